# Shortcuts for those who like make; the scripts are the source of truth (a fresh Debian may lack make).
.PHONY: setup demo test check bench
setup: ; scripts/setup
demo: ; scripts/demo
test: ; scripts/test
check: ; scripts/setup && scripts/check
bench: ; scripts/setup && .venv/bin/python bench/productpage.py
