"""The Celery worker: ``parzen worker`` or ``celery -A parzen.worker.app worker``.

``parzen.worker.app`` holds only the Celery wiring; ``parzen.worker.runtime`` does the work and
knows nothing of Celery.
"""
