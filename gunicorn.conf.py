"""gunicorn settings for BLT Studio: one worker holds the model; an event loop owns the sockets.

    gunicorn -c gunicorn.conf.py "app:create_app()"

One worker because the model lives in process memory (each worker would load its own copy).
The worker is gunicorn's asyncio worker with the studio's additions (app/worker.py): every
connection waits on the event loop, so idle, slow-sending and slow-reading clients hold no
thread; the Flask app runs on BLT_REQUEST_THREADS threads only once a request is complete
(app/bridge.py). On CPU those threads hand every model call to one torch thread, which also
runs the generation engine's steps (app/torch_thread.py: GNU OpenMP slows every parallel region
once more than one thread has its own team). The app is not preloaded, so the master never
imports torch's CUDA state; the worker starts loading the model as it starts, in a background
thread (the bridge's lifespan startup).
"""
import ctypes
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = 1
worker_class = "app.worker.StudioWorker"
# The event loop answers gunicorn's heartbeat while views compute on their threads, so a
# long generation never looks like a hung worker; loading a model on CPU may take a while.
timeout = 120
graceful_timeout = 30
keepalive = 5                # idle seconds between requests on one connection
preload_app = False
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# gunicorn >= 25 opens a control socket at one fixed path per user; several servers (tests,
# benchmarks) would fight over it, and BLT Studio does not use it.
control_socket_disable = True

# glibc gives each thread that contends for malloc an arena of its own (up to 8 per core), where
# the torch activations freed by the request threads linger. Two arenas hold the worker's RSS
# lower and flatter under load (bench/load.py, 16 clients on 2 cores: 561 MiB and +1.0 % over
# 70 s, against 622 MiB and +2.1 % with glibc's default). Set in the master before it forks the
# worker; MALLOC_ARENA_MAX=2 in the environment does the same. Skipped where libc is not glibc.
try:
    ctypes.CDLL("libc.so.6").mallopt(-8, 2)     # M_ARENA_MAX = -8
except (OSError, AttributeError):
    pass
