"""The HTTP gateway: aiohttp app serving the API reference, accounts, keys, jobs, clips, WebSocket."""
