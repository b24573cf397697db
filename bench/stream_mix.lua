-- wrk script for bench/stream_ingest.py: simulated browsers sending a realistic mix of events.
-- args: client key, then the browser ids created before the run. Each request takes the next browser
-- of its thread and the next step of that browser's journey: views, adds, contact, confirm, checkout.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  key = args[1]
  browsers = {}
  -- each wrk thread drives its own share of the browsers, so one browser's events stay in order
  local threads_total = tonumber(args[2])
  for i = 3, #args do
    if (i - 3) % threads_total == tid - 1 then table.insert(browsers, args[i]) end
  end
  step, accepted, failed, next_browser = {}, 0, 0, 1
end

local journey = {"VIEW", "VIEW", "ADD", "VIEW", "ADD", "ADD_CONTACTS", "CONFIRM", "CHECKOUT", "VIEW", "VIEW"}

function request()
  local browser = browsers[next_browser]
  next_browser = next_browser % #browsers + 1
  local n = (step[browser] or 0) + 1
  step[browser] = n
  local kind = journey[(n - 1) % #journey + 1]
  local body
  if kind == "ADD" then
    body = string.format('{"type":"ADD","browser_id":"%s","client_key":"%s","channel":"WEB","pos":"bench.example",' ..
      '"currency":"EUR","page":"product","product":{"item_id":"SKU_%d","type":"MOBILE","name":"Phone","price":30.6,' ..
      '"quantity":1}}', browser, key, n % 3)
  elseif kind == "ADD_CONTACTS" then
    body = string.format('{"type":"ADD_CONTACTS","browser_id":"%s","client_key":"%s","channel":"WEB",' ..
      '"pos":"bench.example","contact":[{"email":"%s@bench.example","firstname":"B","lastname":"C"}]}', browser, key,
      browser)
  elseif kind == "CONFIRM" then
    body = string.format('{"type":"CONFIRM","browser_id":"%s","client_key":"%s","channel":"WEB","pos":"bench.example",' ..
      '"product":[{"item_id":"SKU_0"},{"item_id":"SKU_1"},{"item_id":"SKU_2"}]}', browser, key)
  elseif kind == "CHECKOUT" then
    body = string.format('{"type":"CHECKOUT","browser_id":"%s","client_key":"%s","channel":"WEB","pos":"bench.example",' ..
      '"reference_id":"%s-%d","status":"PURCHASED"}', browser, key, browser, n)
  else
    body = string.format('{"type":"VIEW","browser_id":"%s","client_key":"%s","channel":"WEB","pos":"bench.example",' ..
      '"currency":"EUR","language":"EN","page":"home","ext":{"pageVariantId":"v%d"}}', browser, key, n % 4)
  end
  return wrk.format("POST", "/v1.2/events", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 201 then accepted = accepted + 1 else failed = failed + 1 end
end

function done(summary, latency, requests)
  local accepted_total, failed_total = 0, 0
  for _, thread in ipairs(threads) do
    accepted_total = accepted_total + thread:get("accepted")
    failed_total = failed_total + thread:get("failed")
  end
  io.write(string.format('RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"accepted":%d,"failed":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    accepted_total, failed_total))
end
