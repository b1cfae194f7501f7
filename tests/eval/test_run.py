"""``run_eval`` end to end against scripted simulator and judge servers on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from humanlm.errors import ConfigError, HumanlmError
from humanlm.eval import EvalConfig, evaluate_examples, run_eval
from humanlm.eval.config import read_saved_mode
from humanlm.generate import GenerationSettings, build_generator
from humanlm.judge import JudgeConfig, build_judge
from humanlm.testing import Reply, faults
from humanlm.testing.judge_replies import judge_reply_fn, real_reply_in

from .conftest import NO_TAGS_MARKER, echo_reply


def samples(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_run_folder_holds_records_results_and_config(make_cfg, sim_server, judge_server):
    cfg = make_cfg(limit=8)
    result = run_eval(cfg)
    run_dir = Path(cfg.out)
    recs = samples(run_dir)
    assert len(recs) == 8 == result.examples == result.evaluated
    for rec in recs:
        assert rec["schema_version"] == 2
        for key in ("example_id", "data_source", "user_id", "post_id", "generation", "response"):
            assert key in rec
        verdict = rec["verdicts"]["response_alignment"]
        assert {"score", "reason", "prompt_version", "judge"} <= set(verdict)
        assert verdict["judge"] == f"openai:judge@{judge_server.base_url}"
    res = results(run_dir)
    assert res["schema_version"] == 1 and res["model"] == cfg.model and res["split"] == "test"
    assert res["counts"] == {
        "examples": 8,
        "evaluated_now": 8,
        "rejudged_now": 0,
        "resumed": 0,
        "failed": 0,
        "reply_cut": 0,
    }
    assert res["ledger"]["calls"] == len(judge_server.chat_requests)
    assert res["settings"]["temperature"] == 0.4 and res["settings"]["max_new_tokens"] == 1024
    assert res["bootstrap"]["resamples"] == 1000
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["judge"]["temperature"] == 0.0 and config["no_repeat_ngram"] == 4
    assert (run_dir / "judge_cache.sqlite").exists()
    # The judge ran at temperature 0 and the simulator at the protocol settings.
    assert all(r.body["temperature"] == 0.0 for r in judge_server.chat_requests)
    assert all(r.body["max_tokens"] == 4096 for r in judge_server.chat_requests)
    assert all(r.body["temperature"] == 0.4 for r in sim_server.chat_requests)


def test_run_scores_are_means_of_the_records(make_cfg):
    cfg = make_cfg()
    run_eval(cfg)
    recs, res = samples(Path(cfg.out)), results(Path(cfg.out))
    for metric in ("response_alignment", "state_alignment", "valid_format"):
        values = [r["scores"][metric] for r in recs]
        summary = res["metrics"][metric]
        assert summary["score"] == pytest.approx(100 * sum(values) / len(values), abs=1e-3)
        assert summary["ci_low"] <= summary["score"] <= summary["ci_high"]
    # The demo's wildchat examples about enzymes get an untagged reply: judged leniently, and
    # counted against the valid-format rate.
    bad = [r for r in recs if NO_TAGS_MARKER in r["context_last"]["content"]]
    assert bad and all(r["valid_format"] is False for r in bad)
    assert all(r["response"] == "I forgot the tags" for r in bad)
    assert all(r["verdicts"]["response_alignment"]["reason"] == "ok" for r in bad)
    assert res["metrics"]["valid_format"]["score"] < 100
    assert set(res["by_data_source"]) == {"reddit", "wildchat"}


def test_unscored_example_is_counted_not_zero(make_cfg, judge_server, demo_examples):
    fine = judge_reply_fn(lambda candidate, real: 0.5)
    target = demo_examples[1]["ground_truth"][:40]  # a reddit example with a valid reply

    def reply(request):
        if real_reply_in(request.prompt).startswith(target):
            return Reply(content="I cannot grade this.")  # unparseable, every time
        return fine(request)

    judge_server.reply_fn = reply
    cfg = make_cfg(limit=6, aspects=False)
    run_eval(cfg)
    recs = samples(Path(cfg.out))
    unscored = [r for r in recs if r["scores"]["response_alignment"] is None]
    assert len(unscored) == 1
    assert unscored[0]["verdicts"]["response_alignment"]["reason"] == "parse_failure"
    ra = results(Path(cfg.out))["metrics"]["response_alignment"]
    scored = [r["scores"]["response_alignment"] for r in recs if r not in unscored]
    assert (ra["scored"], ra["unscored"], ra["examples"]) == (5, 1, 6)
    assert ra["score"] == pytest.approx(100 * sum(scored) / 5, abs=1e-3)  # not divided by 6


def test_rerun_resumes_after_a_truncated_samples_file(make_cfg, sim_server, judge_server):
    cfg = make_cfg(limit=6)
    run_eval(cfg)
    path = Path(cfg.out) / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    kept = {json.loads(line)["example_id"] for line in lines[:3]}
    path.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed mid-write
    sim_before, judge_before = len(sim_server.chat_requests), len(judge_server.chat_requests)
    result = run_eval(cfg)
    assert (result.resumed, result.evaluated) == (3, 3)
    assert len(sim_server.chat_requests) - sim_before == 3  # only the missing examples
    assert len(judge_server.chat_requests) == judge_before  # their verdicts: from the cache
    recs = samples(Path(cfg.out))
    assert len(recs) == 6 and len({r["example_id"] for r in recs}) == 6
    assert kept <= {r["example_id"] for r in recs}


def test_interrupted_run_resumes_without_repeating_calls(make_cfg, sim_server, judge_server):
    answered = []

    def flaky(request):  # the server starts refusing us after three replies: the run stops
        if len(answered) >= 3:
            return Reply(status=401)
        answered.append(request)
        return echo_reply(request)

    sim_server.reply_fn = flaky
    cfg = make_cfg(limit=6, simulator={"concurrency": 1}, cache=False)
    with pytest.raises(HumanlmError, match="refused the credentials"):
        run_eval(cfg)
    assert len(samples(Path(cfg.out))) == 3  # finished examples were kept
    judge_before = len(judge_server.chat_requests)
    sim_server.reply_fn = echo_reply
    sim_before = len(sim_server.chat_requests)
    result = run_eval(cfg)
    assert (result.resumed, result.evaluated) == (3, 3)
    assert len(sim_server.chat_requests) - sim_before == 3
    # No cache this time: the judge is asked only about the three new examples.
    new_judge = len(judge_server.chat_requests) - judge_before
    recs = samples(Path(cfg.out))[3:]
    assert new_judge == sum(
        r["verdicts"]["response_alignment"]["calls"] + r["verdicts"]["state_alignment"]["calls"]
        for r in recs
    )
    assert new_judge <= 6


def test_finished_run_makes_no_calls(make_cfg, sim_server, judge_server):
    cfg = make_cfg(limit=4)
    first = run_eval(cfg)
    counts = len(sim_server.chat_requests), len(judge_server.chat_requests)
    again = run_eval(cfg)
    assert (len(sim_server.chat_requests), len(judge_server.chat_requests)) == counts
    assert again.results["metrics"] == first.results["metrics"]


def test_simulator_outage_fails_the_run_and_rerun_retries(make_cfg, sim_server):
    sim_server.reply_fn = lambda request: faults.server_error()
    cfg = make_cfg(limit=3)
    with pytest.raises(HumanlmError, match="no simulator output"):
        run_eval(cfg)
    res = results(Path(cfg.out))
    assert res["counts"]["failed"] == 3
    assert res["metrics"]["response_alignment"]["unscored"] == 3
    sim_server.reply_fn = echo_reply
    result = run_eval(cfg)
    assert (result.evaluated, result.failed) == (3, 0)


def test_other_settings_in_the_same_folder_are_refused(make_cfg):
    run_eval(make_cfg(limit=2))
    with pytest.raises(ConfigError, match="temperature"):
        run_eval(make_cfg(limit=2, temperature=1.0))


def test_default_folder_is_found_again(make_cfg, tmp_path):
    cfg = make_cfg(limit=2, out=None, output_root=str(tmp_path / "runs"))
    first = run_eval(cfg)
    assert first.run_dir.name.endswith("_eval-auto")
    second = run_eval(cfg)
    assert second.run_dir == first.run_dir and second.resumed == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"model": "runs/model"},  # no backend prefix
        {"dataset": "myspace"},  # unknown dataset
        {"judge": "claude"},  # not a judge spec
        {"limit": 0},
        {"temperature": -1.0},
    ],
)
def test_config_is_validated(bad):
    settings = {"model": "hf:x", "data": "demo", **bad}
    with pytest.raises(ConfigError):
        EvalConfig(**settings)


def test_protocol_defaults():
    cfg = read_saved_mode(EvalConfig(model="hf:x", dataset="opinion"))
    assert cfg.dataset == "reddit" and cfg.effective_limit == 5000
    assert EvalConfig(model="hf:x", dataset="amazon").effective_limit == 2000
    assert cfg.effective_max_new_tokens == 1024
    unthinking = read_saved_mode(EvalConfig(model="hf:x", thinking=False))
    assert unthinking.effective_max_new_tokens == 512
    assert (cfg.temperature, cfg.no_repeat_ngram, cfg.judge.temperature) == (0.4, 4, 0.0)
    assert cfg.judge.spec == "litellm:anthropic/claude-haiku-4-5"


def test_hf_backend_end_to_end(tiny_model_dir, make_cfg, judge_server):
    cfg = make_cfg(model=f"hf:{tiny_model_dir}", limit=4, max_new_tokens=8, batch_size=2)
    result = run_eval(cfg)
    recs = samples(Path(cfg.out))
    assert len(recs) == 4 and all(isinstance(r["generation"], str) for r in recs)
    assert result.results["protocol_notes"]["ngram_ban_applied"] == 4
    # A random tiny model cannot write the format; its text is still judged (lenient scoring),
    # and the strict valid-format rate says it broke the format.
    assert result.results["metrics"]["valid_format"]["score"] == 0.0
    judged = [r for r in recs if r["response"]]
    assert len(judge_server.chat_requests) == 2 * len(judged)  # response + aspects per reply


def test_evaluate_examples_with_a_built_generator(tiny_model_dir, demo_examples):
    # How the demo calls it: an hf generator it already holds and the offline MiniLM judge.
    generator = build_generator(f"hf:{tiny_model_dir}")
    settings = GenerationSettings(max_new_tokens=4, batch_size=4)
    judge = build_judge(JudgeConfig("embedding:minilm"))
    seen = []
    recs = evaluate_examples(
        demo_examples[:3],
        generator=generator,
        settings=settings,
        judge=judge,
        embedder=judge,
        on_record=seen.append,
    )
    assert [r["example_id"] for r in recs] == [ex["example_id"] for ex in demo_examples[:3]]
    assert len(seen) == 3
    assert all("embedding_similarity" in r["scores"] for r in recs)


@pytest.mark.parametrize(
    ("mode", "state_set", "thinking"), [("sft", "r_no_tag", False), ("grpo-think", "r", True)]
)
def test_a_run_folder_is_evaluated_with_its_modes_prompt(
    tiny_model_dir, make_cfg, tmp_path, monkeypatch, mode, state_set, thinking
):
    import shutil

    import humanlm.eval.run as eval_run

    run = tmp_path / "train-run"
    shutil.copytree(tiny_model_dir, run / "model")
    (run / "manifest.json").write_text(json.dumps({"mode": mode}))
    asked = []
    real = eval_run.build_sim_prompt

    def recording(example, **kwargs):
        asked.append(kwargs)
        return real(example, **kwargs)

    monkeypatch.setattr(eval_run, "build_sim_prompt", recording)
    cfg = make_cfg(model=f"hf:{run}/model", limit=2, max_new_tokens=4, aspects=False)
    result = run_eval(cfg)
    assert asked == [{"thinking": thinking, "state_set": state_set}] * 2
    notes = result.results["protocol_notes"]
    assert (notes["mode"], notes["state_set"], notes["thinking"]) == (mode, state_set, thinking)
    assert notes["thinking_from"] == "mode" and notes["ngram_ban"]["backend"] == "hf"
    assert notes["ngram_ban"]["size"] == 4 and "transformers" in notes["ngram_ban"]["how"]
    assert notes["ngram_ban"]["scope"] == "reply"  # issue 21
    # The model's own tokenizer measured the prompts; the demo's are all short enough.
    selection = notes["length_filter"]
    assert selection["applied"] is True and selection["tokenizer"] == f"{run}/model"
    assert selection["filtered"] == 0 and selection["examined"] == 2


def test_an_openai_model_without_a_tokenizer_is_noted(make_cfg):
    result = run_eval(make_cfg(limit=2, aspects=False))
    notes = result.results["protocol_notes"]
    assert notes["length_filter"]["applied"] is False and notes["length_filter"]["note"]
    assert notes["ngram_ban"] == {
        "backend": "openai",
        "size": 0,
        "how": "not applied (simulator.ngram_xargs is off)",
    }
    assert notes["simulator_api"] == "chat"


def test_openai_completions_mode_with_the_ngram_argument(make_cfg, sim_server, tiny_model_dir):
    sim_server.reply_fn = lambda request: Reply(content="plan</think>\n\n<response>ok</response>")
    cfg = make_cfg(
        limit=2,
        aspects=False,
        simulator={"api": "completions", "ngram_xargs": True},
        tokenizer=str(tiny_model_dir),
    )
    result = run_eval(cfg)
    requests = sim_server.completion_requests
    assert len(requests) == 2 and sim_server.chat_requests == []
    xargs = {"no_repeat_ngram_size": 4, "ngram_ban_scope": "reply"}
    assert all(r.body["vllm_xargs"] == xargs for r in requests)
    assert all(r.body["prompt"].endswith("<name>HUMAN</name>\n<think>\n") for r in requests)
    notes = result.results["protocol_notes"]
    assert notes["ngram_ban"]["size"] == 4 and "vllm_xargs" in notes["ngram_ban"]["how"]
    assert notes["length_filter"]["applied"] is True and notes["simulator_api"] == "completions"


def test_rerun_after_a_judge_outage_judges_only_the_unscored(make_cfg, sim_server, judge_server):
    healthy = judge_server.reply_fn
    judge_server.reply_fn = lambda request: faults.server_error()
    cfg = make_cfg(limit=4)
    first = run_eval(cfg)
    unscored = first.results["metrics"]["response_alignment"]["unscored"]
    assert unscored >= 3  # all but the untagged reply (a 0 without a call)
    generations = {r["example_id"]: r["generation"] for r in samples(Path(cfg.out))}
    sim_calls = len(sim_server.chat_requests)
    judge_server.reply_fn = healthy
    again = run_eval(cfg)
    ra = again.results["metrics"]["response_alignment"]
    assert (ra["scored"], ra["unscored"]) == (4, 0)
    assert again.results["metrics"]["state_alignment"]["scored"] == 4
    assert len(sim_server.chat_requests) == sim_calls  # saved generations are not regenerated
    latest = {r["example_id"]: r for r in samples(Path(cfg.out))}
    assert {k: r["generation"] for k, r in latest.items()} == generations
    assert again.results["counts"]["rejudged_now"] == unscored
    # Counts and ledgers cover both invocations, each kept on its own as well.
    res = results(Path(cfg.out))
    assert [i["rejudged_now"] for i in res["invocations"]] == [0, unscored]
    ledger = json.loads((Path(cfg.out) / "judge_ledger.json").read_text())
    assert len(ledger["invocations"]) == 2
    assert ledger["calls"] == sum(i["calls"] for i in ledger["invocations"])
    assert ledger["calls"] == len(judge_server.chat_requests)
    assert ledger["failures"]  # the outage stays on record
    third = run_eval(cfg)  # healed: nothing left to ask
    assert third.results["counts"]["rejudged_now"] == 0
    assert len(judge_server.chat_requests) == ledger["calls"]


def test_rerun_keeps_scored_metrics_without_a_cache(make_cfg, judge_server):
    healthy = judge_server.reply_fn

    def aspects_down(request):
        if "emotion" in request.prompt and "stance" in request.prompt:
            return faults.server_error()
        return healthy(request)

    judge_server.reply_fn = aspects_down
    cfg = make_cfg(limit=3, cache=False)
    run_eval(cfg)
    before = {r["example_id"]: r["scores"]["response_alignment"] for r in samples(Path(cfg.out))}
    judge_server.reply_fn = healthy
    again = run_eval(cfg)
    latest = {r["example_id"]: r for r in samples(Path(cfg.out))}
    assert {k: r["scores"]["response_alignment"] for k, r in latest.items()} == before
    assert again.results["metrics"]["state_alignment"]["scored"] == 3


def test_a_moved_endpoint_resumes(make_cfg, sim_server, judge_server):
    cfg = make_cfg(limit=2)
    run_eval(cfg)
    with judge_server.__class__(reply_fn=judge_server.reply_fn) as moved:
        again = run_eval(make_cfg(limit=2, judge=f"openai:judge@{moved.base_url}"))
    assert again.resumed == 2


def test_out_that_is_a_file_is_refused_before_any_call(make_cfg, sim_server, tmp_path):
    path = tmp_path / "taken"
    path.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        run_eval(make_cfg(out=str(path)))
    assert sim_server.chat_requests == []


def test_chat_gate_counts_are_recorded(make_cfg, sim_server, judge_server):
    # issue 21: the Chat gate's counts are in protocol_notes, apart from unscored ones.
    def reply(request):
        if "AI assistant" in str(request.messages[0].get("content")):  # wildchat's system prompt
            return Reply(content="<response>Great question! I'd be happy to help you.</response>")
        return echo_reply(request)

    sim_server.reply_fn = reply
    cfg = make_cfg(aspects=False)
    result = run_eval(cfg)
    recs = samples(Path(cfg.out))
    chat = [r for r in recs if r["data_source"] == "wildchat"]
    assert chat and all(r["scores"]["response_alignment"] == 0.0 for r in chat)
    assert {r["verdicts"]["response_alignment"]["reason"] for r in chat} == {"assistant_voice"}
    others = [r for r in recs if r["data_source"] != "wildchat"]
    assert all(r["verdicts"]["response_alignment"]["reason"] == "ok" for r in others)
    notes = result.results["protocol_notes"]
    assert notes["chat_gate"]["setting"] == "auto" and notes["chat_gate"]["sources"] == ["wildchat"]
    assert notes["chat_gate"]["assistant_voice"] == len(chat) == notes["chat_gate"]["judged"]
    assert notes["chat_gate"]["assistant_voice_rate"] == 1.0
    assert result.results["metrics"]["response_alignment"]["unscored"] == 0
    assert "written as the assistant" in result.summary()
    gated = [r.prompt for r in judge_server.chat_requests if '"assistant_voice"' in r.prompt]
    assert len(gated) == len(chat)


def test_ngram_scope_and_chat_gate_are_settings_of_the_run(make_cfg):
    cfg = make_cfg(ngram_ban_scope="all")
    assert cfg.generation_settings().ngram_ban_scope == "all"
    assert cfg.fingerprint()["ngram_ban_scope"] == "all"
    assert cfg.fingerprint()["judge.chat_gate"] == "auto"
    with pytest.raises(ConfigError, match="ngram_ban_scope"):
        make_cfg(ngram_ban_scope="thinking")
