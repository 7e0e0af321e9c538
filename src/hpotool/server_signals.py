"""Imported first in the worker server (`forkserver.PRELOAD`): it ignores SIGINT from then on.

Python's forkserver ignores SIGINT only once its preloads are imported; Ctrl-C while it imported torch
(the first seconds of `hpotool optimize --workers N`: the terminal signals the whole process group) killed
it with a KeyboardInterrupt traceback. The main process handles Ctrl-C and stops the workers; each worker
sets its own handlers. Never imported anywhere else.
"""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
# `forkserver.start_worker_server` started this process with SIGINT blocked, so that none arriving before
# this line could kill it; one that did is discarded now (ignored), and none can arrive later.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
