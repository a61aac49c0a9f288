"""gunicorn settings for BLT Studio: one worker holds the model; threads serve requests.

    gunicorn -c gunicorn.conf.py "app:create_app()"

One worker because the model lives in process memory (each worker would load its own copy) and
generation is serialised by the app anyway (others get a fast 429). The app is not preloaded, so
the master never imports torch's CUDA state; the worker loads the model on its first request.
"""
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 600               # a long generation or a first model load may take minutes on CPU
graceful_timeout = 30
keepalive = 5
preload_app = False
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# gunicorn >= 25 opens a control socket at one fixed path per user; several servers (tests,
# benchmarks) would fight over it, and BLT Studio does not use it.
control_socket_disable = True
