-- GET one page of the saved view for a random customer (BENCH_DATA: customer ids).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function prepare(customer_id)
   return wrk.format("GET", BASE_PATH .. "&customer_id=" .. customer_id)
end

request = pick
