"""raqib's benchmarks: ``make bench`` (``python -m bench``). Numbers are reported as ratios
against a baseline measured in the same run, since these machines are shared and noisy."""
