"""The run-level tests of the other modes, again in distributed mode: an API process without a queue
(`serve --no-queue`), an orchestrator and two executors, on a database and Redis of their own.

The tests are imported, not copied: pytest resolves their `server` fixture (and `client`/`http`, which depend on
it, and `database_uri`) here, so they run against the distributed topology. The subset covers run behaviour —
create/wait/stream in every mode, join, cancel, multitask strategies, interrupts and resume — and leaves out
what does not depend on where the graph code runs (validation, listing, API-only answers), so that it adds
about 25 s to the suite, most of it the start of the five processes."""
from __future__ import annotations

import pytest

from conftest import Cluster, fresh_database
from test_distributed import distributed
from test_cancel import (  # noqa: F401
    test_bulk_cancel_by_thread_and_run_ids,
    test_cancel_a_pending_run_before_it_starts,
    test_cancel_rollback_deletes_the_run_and_its_checkpoints,
    test_cancel_stops_a_running_run_in_the_middle_of_its_step,
    test_cancel_with_wait_returns_after_the_run_stopped,
    test_closing_the_stream_cancels_the_run_by_default,
    test_deleting_a_thread_while_its_run_writes_checkpoints_leaves_none_behind,
    test_join_of_a_pending_run_returns_as_soon_as_it_is_cancelled,
    test_join_stream_cancel_on_disconnect,
    test_on_disconnect_continue_lets_the_run_finish,
    test_stream_of_a_pending_run_ends_when_a_new_run_interrupts_it,
    test_the_thread_of_a_stateless_run_cancelled_before_it_started_is_removed,
)
from test_multitask import (  # noqa: F401
    test_enqueue_runs_one_after_the_other,
    test_interrupt_also_ends_pending_runs,
    test_interrupt_stops_the_active_run_keeping_its_progress,
    test_reject_on_an_idle_thread_runs,
    test_reject_refuses_a_second_run_with_409,
    test_rollback_deletes_the_active_run_and_its_checkpoints,
)
from test_runs import (  # noqa: F401
    test_a_stateless_run_does_not_take_the_checkpointer_from_later_threaded_runs,
    test_background_run_is_pending_then_succeeds_with_the_official_shape,
    test_checkpoint_during_false_means_durability_exit,
    test_checkpoint_id_forks_from_a_past_checkpoint,
    test_command_update_and_goto,
    test_every_durability_mode_completes_and_saves_the_state,
    test_factory_graph_reads_greeting_from_config_and_context,
    test_failing_graph_ends_in_error_everywhere,
    test_interrupt_after_stops_after_the_node,
    test_interrupt_before_stops_the_graph_before_the_node,
    test_interrupt_then_resume_with_command,
    test_join_waits_for_a_running_run_and_returns_its_values,
    test_state_update_as_node_then_continue,
    test_stateless_background_run_deletes_its_thread_on_completion,
    test_stateless_failing_run_returns_the_error,
    test_stateless_wait_returns_values_and_leaves_no_thread,
    test_thread_is_busy_while_its_run_is_running,
    test_wait_returns_final_values_and_locations,
)
from test_streaming import (  # noqa: F401
    test_background_run_streams_to_two_joiners,
    test_chat_tokens_stream_as_several_messages_tuples,
    test_custom_mode_streams_what_the_node_writes,
    test_debug_tasks_and_checkpoints_modes,
    test_events_mode_names_the_root_after_the_graph,
    test_events_mode_streams_langchain_callback_events,
    test_failing_graph_streams_an_error_event,
    test_interrupt_shows_in_updates_and_values,
    test_join_stream_follows_a_running_run_from_the_moment_of_joining,
    test_join_stream_of_a_finished_run_is_empty,
    test_joining_a_thread_stream_follows_each_of_its_runs_in_turn,
    test_messages_in_updates_carry_the_ids_the_state_keeps,
    test_messages_mode_on_a_plain_node_sends_one_complete_message,
    test_messages_mode_sends_metadata_then_accumulated_partials,
    test_stateless_stream_runs_on_a_temporary_thread,
    test_stream_starts_with_metadata_then_values_by_default,
    test_subgraph_events_are_named_after_their_namespace,
    test_subgraph_streams_carry_only_the_modes_asked_for,
)

@pytest.fixture(scope="module")
def database_uri(postgres_server):
    yield from fresh_database(postgres_server)


@pytest.fixture(scope="module")
def server(database_uri, redis_uri):
    cluster = Cluster(database_uri, redis_uri)
    cluster.env["DRAIN_TIMEOUT_SECS"] = "1"  # the orchestrator's stop: no waiting for runs the tests left behind
    try:
        orchestrator, executors = distributed(cluster, executors=2, slots=4)
        yield cluster.api
        # the runs went through the orchestrator to the executors, and graph code ran nowhere else
        assert "dispatched to executor" in orchestrator.output()
        assert any(" started (attempt " in e.output() for e in executors)
        assert not any(" started (attempt " in p.output() for p in (cluster.api, orchestrator))
    finally:
        cluster.stop()
