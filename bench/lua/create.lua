-- POST a new record with random values (the create policy needs amount >= 0).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local year_start = 1704067200 -- 2024-01-01T00:00:00Z

function request()
   local body = string.format(
      '{"title":"bench %d","amount":%d,"score":%.2f,"due_at":"%s"}',
      math.random(0, 999999), math.random(0, 9999), math.random(0, 99999) / 100,
      os.date("!%Y-%m-%dT%H:%M:%SZ", year_start + math.random(0, 365 * 86400 - 1)))
   return wrk.format("POST", BASE_PATH, nil, body)
end
