"""The process's one HTTP stack, shared by the API client and the Vault sink.

`transport` sends (aiohttp under httpx's API, with the "was it sent?" error rule and proxies
from the environment); `retry` decides what is retried and how long to wait.
"""
