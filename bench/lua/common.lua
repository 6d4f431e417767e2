-- Shared by the operation scripts (loaded with dofile in every wrk thread).
-- Environment: BENCH_PATH (request path and query), BENCH_AUTH_HEADER and BENCH_AUTH_VALUE
-- (the credentials: X-API-Key and the key, or Authorization and "Bearer <token>"),
-- BENCH_DATA (optional file of lines to pick from: record ids or cursors).
-- The done hook prints one line, "BENCH {json}", that the bench parses.
-- A script that defines prepare(line) gets ITEMS[i] = prepare(line): formatting each
-- request once at start keeps the generator's CPU per request low.

BASE_PATH = os.getenv("BENCH_PATH")
wrk.headers[os.getenv("BENCH_AUTH_HEADER")] = os.getenv("BENCH_AUTH_VALUE")
wrk.headers["Content-Type"] = "application/json"

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_number", threads)
end

ITEMS = {}

function init(args)
   -- Deterministic per thread, different between threads.
   math.randomseed(7919 * (thread_number or 1))
   local data = os.getenv("BENCH_DATA")
   if data and data ~= "" then
      for line in io.lines(data) do
         ITEMS[#ITEMS + 1] = prepare and prepare(line) or line
      end
   end
end

function pick()
   return ITEMS[math.random(#ITEMS)]
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "p50_us": %.0f, "p90_us": %.0f, ' ..
      '"p99_us": %.0f, "max_us": %.0f, "errors": {"connect": %d, "read": %d, ' ..
      '"write": %d, "status": %d, "timeout": %d}}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, errors.connect, errors.read, errors.write,
      errors.status, errors.timeout))
end
