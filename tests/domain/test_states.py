import pytest

from hodei.domain.states import (
    TERMINAL_STATES,
    IllegalTransition,
    JobState,
    can_transition,
    transition,
)

Q, S, R = JobState.QUEUED, JobState.STARTING, JobState.RUNNING
OK, F, C, T = JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT

ALLOWED = {
    (Q, S),
    (Q, F),
    (Q, C),
    (S, R),
    (S, Q),
    (S, F),
    (S, C),
    (S, T),
    (R, OK),
    (R, Q),
    (R, F),
    (R, C),
    (R, T),
}


@pytest.mark.parametrize("current", list(JobState))
@pytest.mark.parametrize("target", list(JobState))
def test_transition_table(current: JobState, target: JobState) -> None:
    legal = (current, target) in ALLOWED
    assert can_transition(current, target) is legal
    if legal:
        assert transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition, match=f"{current.value} -> {target.value}"):
            transition(current, target)


def test_terminal_states() -> None:
    assert {s for s in JobState if s.terminal} == TERMINAL_STATES == {OK, F, C, T}


def test_queued_cannot_skip_to_success() -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(Q, OK)
    assert (info.value.current, info.value.target) == (Q, OK)
