"""Host orchestration of one score call (DESIGN.md): what kind of input it is (:mod:`.inputs`), which path
runs (:mod:`.plan`, the one auto rule), and the passes that run it (:mod:`.passes`, :mod:`.nystrom_run`,
:mod:`.frobenius_run`, :mod:`.run`). Threads, progress bars, host memory and files live here, above the
pure math of :mod:`clipcore.covariance`, :mod:`clipcore.schur`, :mod:`clipcore.nystrom`, … and below the
public compositions of :mod:`clipcore.scores`."""
