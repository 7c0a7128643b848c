"""The sweep: plan the jobs, claim them, run them here, on local workers or on Slurm, and report where they stand."""
