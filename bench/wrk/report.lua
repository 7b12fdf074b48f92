-- Shared by the wrk scripts: done() prints one line "WRKJSON {...}" that
-- bench/run reads (requests, good responses, errors, latency percentiles).
local M = {}

function M.done(summary, latency, requests, extra)
  local e = summary.errors
  local bad = e.connect + e.read + e.write + e.status + e.timeout
  local secs = summary.duration / 1e6
  local good = summary.requests - e.status - e.timeout
  if good < 0 then good = 0 end
  local parts = {
    string.format('"requests": %d', summary.requests),
    string.format('"good": %d', good),
    string.format('"seconds": %.3f', secs),
    string.format('"per_sec": %.1f', good / secs),
    string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"bad": %d', bad),
    string.format('"p50_ms": %.3f', latency:percentile(50) / 1000),
    string.format('"p99_ms": %.3f', latency:percentile(99) / 1000),
    string.format('"max_ms": %.3f', latency.max / 1000),
  }
  if extra then
    for k, v in pairs(extra) do
      table.insert(parts, string.format('"%s": %s', k, tostring(v)))
    end
  end
  io.write("WRKJSON {" .. table.concat(parts, ", ") .. "}\n")
end

return M
