"""The test sessions' DDS domains: derived from the process id, never shared on one host."""

from __future__ import annotations

import os
import subprocess
import sys

import conftest
from conftest import REPO, TEST_DOMAINS, claim_domain_id


def test_this_session_runs_in_a_domain_of_its_own():
    domain = int(os.environ["ROS_DOMAIN_ID"])
    assert domain != 0
    assert 0 <= domain <= 101  # valid Fast DDS ports on localhost
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_the_domain_follows_the_pid_and_skips_domains_held_elsewhere(tmp_path):
    held = len(conftest._DOMAIN_LOCKS)
    try:
        first = claim_domain_id(pid=len(TEST_DOMAINS) + 3, lock_dir=tmp_path)
        second = claim_domain_id(pid=3, lock_dir=tmp_path)  # same start: that one is taken
        last = claim_domain_id(pid=len(TEST_DOMAINS) - 1, lock_dir=tmp_path)
        assert (first, second, last) == (TEST_DOMAINS[3], TEST_DOMAINS[4], TEST_DOMAINS[-1])
        # another process sees the locks too
        code = (
            "import sys; sys.path.insert(0, 'test'); from pathlib import Path; "
            "from conftest import claim_domain_id; "
            f"print(claim_domain_id(pid=3, lock_dir=Path({str(tmp_path)!r})))"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert int(out.stdout.split()[-1]) == TEST_DOMAINS[5]
    finally:
        for handle in conftest._DOMAIN_LOCKS[held:]:
            handle.close()
        del conftest._DOMAIN_LOCKS[held:]
    assert claim_domain_id(pid=3, lock_dir=tmp_path) == TEST_DOMAINS[3]  # released
    conftest._DOMAIN_LOCKS.pop().close()
