-- wrk script: POST /v1/jobs with a typical spec and the bearer key from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
wrk.body = [[{"output":{"width":1280,"height":720,"fps":30},"scenes":[{"duration":3,"background":{"color":"#0b1d3a"},"texts":[{"text":"Spring Campaign","x":0.5,"y":0.4,"size":0.08,"color":"#ffffff"},{"text":"renderfleet","y":0.6,"size":0.05}],"transition":{"kind":"fade","duration":0.5}}],"priority":5,"metadata":{"campaign":"spring"}}]]

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99), summary.requests, errors))
end
