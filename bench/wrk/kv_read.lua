-- KV v2 reads with X-Vault-Token over keep-alive connections.
-- Environment: TSI_BENCH_TOKEN (the X-Vault-Token), TSI_BENCH_KV_PREFIX
-- (path prefix, e.g. /v1/secret/data/bench/s), TSI_BENCH_KV_COUNT (reads
-- cycle over prefix0 .. prefix<N-1>).
package.path = os.getenv("TSI_BENCH_WRK_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local token = os.getenv("TSI_BENCH_TOKEN") or ""
local prefix = os.getenv("TSI_BENCH_KV_PREFIX") or "/v1/secret/data/bench/s"
local count = tonumber(os.getenv("TSI_BENCH_KV_COUNT") or "1")
local counter = 0
local requests = {}

function init(args)
  for i = 0, count - 1 do
    requests[i] = wrk.format("GET", prefix .. i, { ["X-Vault-Token"] = token })
  end
end

function request()
  local r = requests[counter % count]
  counter = counter + 1
  return r
end

function done(summary, latency, reqs)
  report.done(summary, latency, reqs)
end
