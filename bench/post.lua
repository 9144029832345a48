-- wrk script for bench/oidc.sh: one fixed request, and a machine-readable summary line at the end.
--
-- The request comes from the environment so the shell script never writes secrets into files:
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_BODY    request body; sent as application/x-www-form-urlencoded when set
--   BENCH_AUTH    the whole Authorization header value, e.g. "Basic ..." (optional)
-- Used for every endpoint (also the GET) so that every run ends with the same BENCH_JSON line.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH") or ""
if auth ~= "" then
  wrk.headers["Authorization"] = auth
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
