-- wrk script for bench/side_by_side.py: rotating refresh tokens, each used once.
--
-- Every refresh token is single use (idp and node-oidc-provider both rotate it), so the script keeps a pool of
-- live tokens: a request takes one, and its answer puts the new one back. With at least as many tokens as
-- connections (one wrk thread, -t1) no token is ever sent twice. From the environment, never from a file:
--   BENCH_REFRESH_TOKENS  space-separated refresh tokens, one family each
--   BENCH_AUTH            the whole Authorization header value for the client ("Basic ...")
-- Ends with the same BENCH_JSON summary line as post.lua. A failed answer loses its family's token; once the pool
-- is empty, requests go out with a dead token and come back as errors, which wrk counts as non-2xx.

local pool = {}
for token in string.gmatch(os.getenv("BENCH_REFRESH_TOKENS") or "", "%S+") do
  pool[#pool + 1] = token
end
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = os.getenv("BENCH_AUTH") or "",
}

function request()
  local token = table.remove(pool)
  if token == nil then
    token = "starved" -- only after failed answers; bound to fail, and counted as an error
  end
  return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, _, body)
  local token = string.match(body or "", '"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    pool[#pool + 1] = token
  end
end

-- Latencies are in microseconds; duration too.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"rps":%.1f,"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_max_us":%d,' ..
    '"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6), latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9),
    e.connect, e.read, e.write, e.status, e.timeout))
end
