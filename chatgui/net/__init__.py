"""The network client: connection, transports, pins, offline queue, backoff, failures in words.

No Tk here: these run on the client's own threads (``net-reader``, ``net-writer``)."""
