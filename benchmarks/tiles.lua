-- wrk script for benchmarks/run's tile section: cycles through the request paths listed in the
-- file named by the environment variable TILE_PATHS (one a line), each thread taking every
-- T-th path from its own offset so that the threads' requests are distinct; counts the
-- responses marked `X-Tile-Cache: hit` (OneMap's vector tile cache) and prints the figures of
-- report.lua plus `hits` and `distinct` (the length of the list).
local paths = {}
for line in io.lines(os.getenv("TILE_PATHS")) do
  if line ~= "" then paths[#paths + 1] = line end
end
local threads = {}
local counter = 1
setup = function(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end
init = function(args)
  nthreads = tonumber(os.getenv("TILE_THREADS") or "2")
  hits = 0
  k = 0
end
request = function()
  local i = (k * nthreads + id) % #paths + 1
  k = k + 1
  return wrk.format(nil, paths[i])
end
response = function(status, headers, body)
  if headers["X-Tile-Cache"] == "hit" then hits = hits + 1 end
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  local h = 0
  for _, t in ipairs(threads) do h = h + (t:get("hits") or 0) end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, "non2xx": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f, "hits": %d, "distinct": %d}\n',
    summary.requests, summary.duration, summary.bytes, errors, summary.errors.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean, h, #paths))
end
