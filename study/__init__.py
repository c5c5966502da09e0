"""The blind A/B study kit, outside ComfyUI: making the clips (generate.py, through tools/client.py), the study folder
and its checks (manifest.py), the blind (blind.py), the rating server the organiser starts (server.py over store.py
and votes.py; its page is page/), and the report (stats.py, report.py). Pure Python plus aiohttp for the server."""
