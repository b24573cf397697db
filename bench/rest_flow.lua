-- wrk script for bench/rest_api.py: each order is created, given 3 items, a contact and an extension,
-- then read back expanded. Follow-up requests are queued per wrk thread once the order's ref is known.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  auth = args[1]
  prefix = string.format("%d-%d", tid, os.time())
  queue, head, tail, seq = {}, 1, 0, 0
  creates, items, contacts, extensions, reads, failures = 0, 0, 0, 0, 0, 0
end

local function push(method, path, body)
  tail = tail + 1
  queue[tail] = wrk.format(method, path, {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end

function request()
  if head <= tail then
    local req = queue[head]
    queue[head] = nil
    head = head + 1
    return req
  end
  seq = seq + 1
  local body = string.format(
    '{"referenceId":"BENCH-%s-%d","orderedAt":"2025-03-07T16:15:11Z","currencyCode":"EUR","price":%d,' ..
    '"status":"PURCHASED","channel":"WEB","pointOfSale":"bench.example"}', prefix, seq, 100 + seq % 50)
  return wrk.format("POST", "/v2.1/orders", {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status >= 300 then
    failures = failures + 1
    return
  end
  if status == 201 and body:find('"contacts":{"href"', 1, true) then
    creates = creates + 1
    local ref = body:match('"ref":"([%x%-]+)"')
    local item = '{"type":"MOBILE","name":"Phone","price":30.6,"currencyCode":"EUR","quantity":1}'
    for _ = 1, 3 do push("POST", "/v2.1/orders/" .. ref .. "/orderItems", item) end
    push("POST", "/v2.1/orders/" .. ref .. "/contacts", string.format(
      '{"firstName":"Bench","lastName":"Guest","emails":["guest%d@bench.example"]}', seq % 500))
    push("POST", "/v2.1/orders/" .. ref .. "/extensions/ext",
      '{"storeLocation":"London","totalUnits":3,"giftWrap":false}')
  elseif status == 201 and body:find('"name":"ext"', 1, true) then
    extensions = extensions + 1
    local order = body:match('"order":{"href":"[^"]-(/v2%.1/orders/[%x%-]+)"}')
    push("GET", order .. "?expand=true", nil)
  elseif status == 201 and body:find('"guest":{"href"', 1, true) then
    contacts = contacts + 1
  elseif status == 201 then
    items = items + 1
  else
    reads = reads + 1
  end
end

function done(summary, latency, requests)
  local totals = {creates = 0, items = 0, contacts = 0, extensions = 0, reads = 0, failures = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
  end
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"errors":%d,' ..
    '"creates":%d,"items":%d,"contacts":%d,"extensions":%d,"reads":%d,"failures":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    totals.creates, totals.items, totals.contacts, totals.extensions, totals.reads, totals.failures))
end
