# where the time of the reference code's RFF setting goes (clip-dissection, D = 2500, n = 6000)
import cProfile, pstats, sys, time, warnings
sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__import__("os").path.abspath(__file__)), ".."))
import numpy as np
import bench_paper as bp
import clipcore
warnings.simplefilter("ignore")
x, t = bp.clip_like(6000)
omega = np.random.default_rng(2).standard_normal((x.shape[1], 2500)).astype(np.float32) / 0.5
run = lambda: clipcore.sce(x.astype(np.float32), t.astype(np.float32), kernel="gaussian", omega=omega,
                           convention="clip-dissection", progress=False)
run()
pr = cProfile.Profile(); pr.enable(); t0 = time.perf_counter(); run(); print("total", time.perf_counter() - t0); pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
