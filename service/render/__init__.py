"""Drawing a scored trip (the map of ``routerisk map`` and of the dispatcher page), transport-free:
it takes plain data and functions that score and look cells up, never a channel or a server."""
