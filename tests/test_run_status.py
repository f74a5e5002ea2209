from scaling import run_status


def test_finished_runs_are_final_or_failed_and_a_preempted_one_is_not_finished():
    assert set(run_status.FINISHED) == set(run_status.FINAL) | {run_status.FAILED}
    assert run_status.FAILED not in run_status.FINAL  # a failed run is retried
    assert run_status.PREEMPTED not in run_status.FINISHED  # a preempted run is resumed
