-- wrk script: GET /v1/mentions/<key> with the key drawn at random from a list, counting every
-- answer that is not 2xx (wrk's own summary lumps them into "Non-2xx or 3xx responses" and
-- does not fail the run).
--
--   wrk -t2 -c64 -d30s -s crawler/bench/mentions.lua http://127.0.0.1:8099 -- DIR/urls/mentions.txt
--
-- The argument is a file of request paths, one a line (fritter-crawler-bench --serve writes
-- DIR/urls/mentions.txt). At the end it prints the non-2xx and socket-error counts and
-- "RESULT: PASS" or "RESULT: FAIL", and exits 1 on failure.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1] or "mentions.txt"
  paths = {}
  local f = io.open(file, "r")
  if f == nil then
    io.stderr:write("mentions.lua: cannot open " .. file .. " (pass the list after --)\n")
    os.exit(2)
  end
  for line in f:lines() do
    if line ~= "" then table.insert(paths, line) end
  end
  f:close()
  if #paths == 0 then
    io.stderr:write("mentions.lua: " .. file .. " has no paths\n")
    os.exit(2)
  end
  math.randomseed(os.time() * 100 + id)
  non2xx = 0
  statuses = {}
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    local s = t:get("statuses")
    for code, n in pairs(s) do
      io.write(string.format("non-2xx: HTTP %d x %d\n", code, n))
    end
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format("requests: %d in %.2f s = %.0f/s; non-2xx: %d; socket errors: connect %d, read %d, write %d, timeout %d\n",
    summary.requests, secs, summary.requests / secs, bad, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("latency (closed loop): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  if bad == 0 and sock == 0 and summary.requests > 0 then
    io.write("RESULT: PASS (every answer 2xx, no socket errors)\n")
  else
    io.write("RESULT: FAIL\n")
    os.exit(1)
  end
end
