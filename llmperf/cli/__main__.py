"""``python -m llmperf.cli``: the same as the ``llmperf`` console script."""

from llmperf.cli import main

main()
