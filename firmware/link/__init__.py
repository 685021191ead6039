"""The link between the monitor's real-time loop and the courier process (storage, network).

* :mod:`.messages` — what each side says, as typed msgpack messages;
* :mod:`.framing` — length-prefixed frames over a non-blocking stream socket;
* :mod:`.endpoint` — the loop's end (:class:`.endpoint.CourierLink`), never blocking;
* :mod:`.supervisor` — starts the courier and replaces it when it dies or hangs.
"""
