-- PATCH amount and score of a random visible record (BENCH_DATA: the ids); the new amount
-- keeps the record within the update policy (amount >= 0).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
   local body = string.format(
      '{"amount":%d,"score":%.2f}', math.random(0, 9999), math.random(0, 99999) / 100)
   return wrk.format("PATCH", BASE_PATH .. "/" .. pick(), nil, body)
end
