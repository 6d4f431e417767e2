-- GET one filtered, sorted page: the first page, or (BENCH_DATA: cursors) a random deep one.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local first_page = nil

function prepare(cursor)
   return wrk.format("GET", BASE_PATH .. "&cursor=" .. cursor)
end

function request()
   if #ITEMS == 0 then
      first_page = first_page or wrk.format("GET", BASE_PATH)
      return first_page
   end
   return pick()
end
