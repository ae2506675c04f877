-- Argo CD health check for modelfleet.io/LLMDeployment.
--
-- Argo CD runs this in its Lua 5.1 VM (gopher-lua) with the object in the global `obj`.
-- Checks configured in argocd-cm get only the base, table and a safe os library, so no
-- string.* functions (and no ("x"):method() calls) are used here.
--
--   no status yet, or status for an older generation  -> Progressing
--   Fits=False (the model cannot fit the GPUs)          -> Degraded, with its message
--   Degraded=True                                       -> Degraded, with its message
--   Progressing=True (a rollout or scale-up under way)  -> Progressing, with its message, even while
--                                                          old replicas keep Ready=True (as Argo CD
--                                                          rates a Deployment mid-rollout)
--   Ready=True                                          -> Healthy
--   otherwise (loading the model)                       -> Progressing
local hs = {}

local function find(conditions, ctype)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

-- The first rule whose condition has the given status decides, in this order.
local rules = {
  {"Fits", "False", "Degraded", "The model does not fit the GPUs of one replica"},
  {"Degraded", "True", "Degraded", "Degraded"},
  {"Progressing", "True", "Progressing", "Rolling out"},
  {"Ready", "True", "Healthy", "Ready"},
}
for _, rule in ipairs(rules) do
  local c = find(status.conditions, rule[1])
  if c ~= nil and c.status == rule[2] then
    hs.status = rule[3]
    hs.message = message_of(c, rule[4])
    return hs
  end
end

hs.status = "Progressing"
hs.message = message_of(find(status.conditions, "Progressing"),
  message_of(find(status.conditions, "Ready"), "Waiting for replicas to become ready"))
return hs
