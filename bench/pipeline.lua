-- wrk script: HTTP/1.1 pipelining, DEPTH requests in one write (TechEmpower plaintext style).
-- Used by bench/run.sh; by hand: wrk -t1 -c64 -d10s -s bench/pipeline.lua http://127.0.0.1:8090/ -- 16
-- wrk counts every response, so its "requests" and req/s are responses, DEPTH per write.
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do r[i] = wrk.format(nil, "/plaintext") end
  req = table.concat(r)
end
request = function() return req end
