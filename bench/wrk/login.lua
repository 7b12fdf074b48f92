-- Logins, each with a fresh JWT (POST /v1/auth/trusted-identity/login).
-- Environment: TSI_BENCH_TOKENS (file of tokens, one per line, minted
-- before the run), TSI_BENCH_ROLE. Each wrk thread takes every n-th token;
-- when a thread runs out it starts again and counts the reuse ("reused" in
-- the report), which the server may refuse as a replay.
package.path = os.getenv("TSI_BENCH_WRK_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local role = os.getenv("TSI_BENCH_ROLE") or "bench"
local path = "/v1/auth/trusted-identity/login"
local headers = { ["Content-Type"] = "application/json" }
local threads = {}
local tokens = {}
local next_token = 1
reused = 0

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("TSI_BENCH_WRK_THREADS") or "2")
  local i = 0
  for line in io.lines(os.getenv("TSI_BENCH_TOKENS")) do
    if i % nthreads == thread_id then
      table.insert(tokens, line)
    end
    i = i + 1
  end
end

function request()
  if next_token > #tokens then
    next_token = 1
    reused = reused + 1
  end
  local tok = tokens[next_token]
  next_token = next_token + 1
  return wrk.format("POST", path, headers,
    '{"role": "' .. role .. '", "jwt": "' .. tok .. '"}')
end

function done(summary, latency, reqs)
  local total_reused = 0
  for _, t in ipairs(threads) do
    total_reused = total_reused + (t:get("reused") or 0)
  end
  report.done(summary, latency, reqs, { reused_rounds = total_reused })
end
