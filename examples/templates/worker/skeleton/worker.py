"""${{ values.name }}: ${{ values.description }} (consumes ${{ values.queue }})."""
import os
import signal
import time

QUEUE = os.environ.get("QUEUE", "${{ values.queue }}")
running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)

while running:
    # Replace with the queue client of your platform.
    print(f"waiting for work on {QUEUE}", flush=True)
    time.sleep(5)
