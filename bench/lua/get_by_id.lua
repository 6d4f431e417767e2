-- GET one record by a random visible id (BENCH_DATA: the ids).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function prepare(id)
   return wrk.format("GET", BASE_PATH .. "/" .. id)
end

request = pick
