"""Plugin discovery, selection and loading through real entry points."""

from __future__ import annotations

import logging
import sys

import pytest

from kernel.config import PluginSettings, Settings
from kernel.errors import PluginError
from kernel.plugins import load_plugins, select_plugins
from kernel.runtime import Tessera
from tests.fake_plugins import FakeDistributions

BUILT_INS = {"field_types.core", "operators.core", "schema.core", "transports.postgres"}


def settings(**plugins: object) -> Settings:
    return Settings(plugins=PluginSettings(**plugins))


def test_builtins_load_through_entry_points() -> None:
    plugins = load_plugins(settings())
    assert set(plugins.names) >= BUILT_INS
    core = plugins.get("field_types.core")
    assert core.distribution == "tessera"
    assert "register_field_types" in plugins.hooks_of("field_types.core")


def test_globs_select_in_config_order_and_disabled_removes() -> None:
    available = ["a.one", "a.two", "b.one", "c"]
    chosen = select_plugins(available, PluginSettings(enabled=["c", "a.*", "*"], disabled=["b.*"]))
    assert chosen == ["c", "a.one", "a.two"]


def test_unknown_plugin_name_in_enabled_stops_startup() -> None:
    with pytest.raises(PluginError) as raised:
        load_plugins(settings(enabled=["field_types.core", "no.such.plugin"]))
    message = str(raised.value)
    assert "plugins.enabled: no installed plugin named 'no.such.plugin'" in message
    assert "field_types.core" in message  # lists what is installed
    assert "\n" not in message


def test_plugin_raising_on_import_stops_startup_naming_it(
    fake_distributions: FakeDistributions,
) -> None:
    fake_distributions.add(
        "tests-broken",
        {"broken.raises": "broken_raises"},
        {"broken_raises": "raise RuntimeError('boom at import')\n"},
    )
    with pytest.raises(PluginError) as raised:
        load_plugins(settings())
    assert str(raised.value) == (
        "plugin broken.raises (from tests-broken): failed to load broken_raises: "
        "RuntimeError: boom at import"
    )


def test_plugin_that_cannot_be_imported_stops_startup(
    fake_distributions: FakeDistributions,
) -> None:
    fake_distributions.add("tests-ghost", {"ghost": "no_such_module_anywhere"}, {})
    with pytest.raises(PluginError) as raised:
        load_plugins(settings())
    message = str(raised.value)
    assert message.startswith("plugin ghost (from tests-ghost): failed to load")
    assert "ModuleNotFoundError" in message


def test_disabled_broken_plugin_is_never_imported(fake_distributions: FakeDistributions) -> None:
    fake_distributions.add(
        "tests-broken",
        {"broken.raises": "broken_raises"},
        {"broken_raises": "raise RuntimeError('boom at import')\n"},
    )
    plugins = load_plugins(settings(disabled=["broken.*"]))
    assert "broken.raises" not in plugins


def test_requirement_on_a_disabled_plugin_stops_startup(
    fake_distributions: FakeDistributions,
) -> None:
    fake_distributions.add(
        "tests-needy",
        {"needy": "needy_plugin", "helper.one": "helper_plugin"},
        {
            "needy_plugin": """
                from kernel import PluginInfo, hookimpl

                @hookimpl
                def plugin_info():
                    return PluginInfo(requires=["helper.*"])
            """,
            "helper_plugin": "",
        },
    )
    assert "needy" in load_plugins(settings())
    with pytest.raises(PluginError) as raised:
        load_plugins(settings(disabled=["helper.one"]))
    assert str(raised.value) == (
        "plugin needy: requires 'helper.*', which is not enabled; enable one of: helper.one"
    )


CONFIGURED = """
    from pydantic import BaseModel
    from kernel import PluginInfo, hookimpl

    class Config(BaseModel):
        greeting: str = "hello"
        repeat: int = 1

    @hookimpl
    def plugin_info():
        return PluginInfo(config=Config, secret_keys=frozenset({"greeting"}))
"""


def test_plugin_config_reaches_the_plugin_validated(fake_distributions: FakeDistributions) -> None:
    fake_distributions.add(
        "tests-configured", {"configured": "configured_plugin"}, {"configured_plugin": CONFIGURED}
    )
    plugins = load_plugins(settings(config={"configured": {"repeat": "3"}}))
    config = plugins.config("configured")
    assert (config.greeting, config.repeat) == ("hello", 3)


def test_invalid_plugin_config_names_the_key(fake_distributions: FakeDistributions) -> None:
    fake_distributions.add(
        "tests-configured", {"configured": "configured_plugin"}, {"configured_plugin": CONFIGURED}
    )
    with pytest.raises(PluginError) as raised:
        load_plugins(settings(config={"configured": {"repeat": "many"}}))
    assert str(raised.value).startswith("plugin configured: config: repeat: Input should be")


def test_config_for_a_plugin_without_a_config_model_is_refused() -> None:
    with pytest.raises(PluginError, match="plugin operators.core: takes no config"):
        load_plugins(settings(config={"operators.core": {"x": 1}}))


def test_config_for_an_uninstalled_plugin_is_refused() -> None:
    with pytest.raises(PluginError, match="plugins.config: no installed plugin named 'typo'"):
        load_plugins(settings(config={"typo": {}}))


def test_misspelt_hook_fails_loudly(fake_distributions: FakeDistributions) -> None:
    fake_distributions.add(
        "tests-typo",
        {"typo.hook": "typo_hook"},
        {
            "typo_hook": """
                from kernel import hookimpl

                @hookimpl
                def register_feild_types():
                    return []
            """
        },
    )
    with pytest.raises(PluginError, match="typo.hook.*register_feild_types"):
        load_plugins(settings())


def test_duplicate_registration_names_both_plugins(fake_distributions: FakeDistributions) -> None:
    fake_distributions.add(
        "tests-dupe",
        {"dupe.types": "dupe_types"},
        {
            "dupe_types": """
                from kernel import hookimpl
                from plugins.field_types.core import StringType

                class Again(StringType):
                    pass

                @hookimpl
                def register_field_types():
                    return [Again]
            """
        },
    )
    with pytest.raises(PluginError) as raised:
        Tessera.build(settings())
    assert str(raised.value) == (
        "field type 'string' is registered by both dupe.types and field_types.core"
    )


def test_registering_something_that_is_not_a_class_of_the_kind_is_refused(
    fake_distributions: FakeDistributions,
) -> None:
    fake_distributions.add(
        "tests-wrong",
        {"wrong.kind": "wrong_kind"},
        {
            "wrong_kind": """
                from kernel import hookimpl

                @hookimpl
                def register_operators():
                    return [object]
            """
        },
    )
    with pytest.raises(PluginError, match="plugin wrong.kind: register_operators returned"):
        Tessera.build(settings())


def test_hooks_run_in_config_order(fake_distributions: FakeDistributions) -> None:
    source = """
        from kernel import hookimpl

        @hookimpl
        def register_backup_parts():
            return []
    """
    fake_distributions.add(
        "tests-order",
        {"order.first": "order_first", "order.second": "order_second"},
        {"order_first": source, "order_second": source},
    )
    for enabled in (["order.first", "order.second"], ["order.second", "order.first"]):
        plugins = load_plugins(settings(enabled=[*enabled, "*"]))
        called = [name for name, _ in plugins.call_each("register_backup_parts")]
        assert called == enabled


def test_essential_kinds_are_required() -> None:
    with pytest.raises(PluginError, match="no field type is registered: enable field_types.core"):
        Tessera.build(settings(disabled=["field_types.*"]))


def test_unknown_event_bus_lists_the_available_ones() -> None:
    with pytest.raises(PluginError) as raised:
        Tessera.build(Settings(event_bus="carrier-pigeon"))
    assert "event_bus: no event bus named 'carrier-pigeon'; available:" in str(raised.value)
    assert "postgres (transports.postgres)" in str(raised.value)


def test_trace_plugins_logs_every_hook_call(
    fake_distributions: FakeDistributions, caplog: pytest.LogCaptureFixture
) -> None:
    fake_distributions.add("tests-wrap", {"wrap.operators": "wrap_operators"}, WRAPPERS)
    with caplog.at_level(logging.INFO, logger="kernel.plugins"):
        plugins = load_plugins(Settings(trace_plugins=True))
        plugins.call_each("register_operators")
    assert "hook plugin_info -> field_types.core" in caplog.messages
    assert "hook register_operators -> operators.core (wrapped by wrap.operators)" in (
        caplog.messages
    )
    assert any(
        line.startswith("hook register_operators <- operators.core (wrapped by wrap.operators): [[")
        for line in caplog.messages
    )


def test_no_trace_unless_asked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kernel.plugins"):
        load_plugins(Settings()).call_each("register_operators")
    assert not [line for line in caplog.messages if line.startswith("hook ")]


#: Wrappers of both pluggy styles: they see each plugin's call and may change its result.
WRAPPERS = {
    "wrap_operators": """
        from kernel import hookimpl

        seen = []

        @hookimpl(wrapper=True)
        def register_field_types():
            returned = yield
            seen.append(("field_types", [cls.name for found in returned for cls in found]))
            return returned

        @hookimpl(hookwrapper=True)
        def register_operators():
            outcome = yield
            seen.append(("operators", len(outcome.get_result()[0])))
            outcome.force_result([[cls for cls in outcome.get_result()[0] if cls.name != "ne"]])
    """
}


def test_wrappers_see_and_may_change_each_plugins_result(
    fake_distributions: FakeDistributions,
) -> None:
    fake_distributions.add("tests-wrap", {"wrap.operators": "wrap_operators"}, WRAPPERS)
    tessera = Tessera.build(settings())
    seen = sys.modules["wrap_operators"].seen
    # one call per field-type plugin, each seen by the wrapper
    seen_types = [name for kind, names in seen if kind == "field_types" for name in names]
    assert seen_types == list(tessera.field_types)
    assert ("operators", len(tessera.operators) + 1) in seen
    assert "eq" in tessera.operators and "ne" not in tessera.operators
    assert "register_operators" in tessera.plugins.hooks_of("wrap.operators")
    # A plugin that only wraps is not itself called for a result.
    assert "wrap.operators" not in [
        name for name, _ in tessera.plugins.call_each("register_operators")
    ]


NOTIFIED = """
    from kernel import hookimpl
    import notify_log

    @hookimpl
    async def on_schema_applied(project_id, op):
        notify_log.events.append(("{name}", project_id))
        if op["op"] == "fail":
            raise RuntimeError("{name} failed")

    @hookimpl
    def startup():
        notify_log.events.append(("{name}", "startup"))

    @hookimpl
    def shutdown():
        notify_log.events.append(("{name}", "shutdown"))
        raise RuntimeError("{name} cannot stop")
"""

OBSERVER = """
    from kernel import hookimpl
    import notify_log

    @hookimpl(wrapper=True)
    def on_schema_applied(op):
        coroutine = yield

        async def observed():
            try:
                await coroutine[0]
            except Exception as error:
                notify_log.failures.append(str(error))
                raise
        return [observed()]
"""


def notifying_plugins(fake_distributions: FakeDistributions) -> list[tuple[str, str]]:
    fake_distributions.add(
        "tests-notified",
        {"n.first": "n_first", "n.second": "n_second", "n.observer": "n_observer"},
        {
            "notify_log": "events = []\nfailures = []\n",
            "n_first": NOTIFIED.replace("{name}", "first"),
            "n_second": NOTIFIED.replace("{name}", "second"),
            "n_observer": OBSERVER,
        },
    )
    return sys.modules.setdefault("notify_log", __import__("notify_log")).events


async def test_notification_failures_are_isolated_and_seen_by_wrappers(
    fake_distributions: FakeDistributions, caplog: pytest.LogCaptureFixture
) -> None:
    events = notifying_plugins(fake_distributions)
    plugins = load_plugins(settings(enabled=["n.*"]))
    await plugins.notify("on_schema_applied", tessera=None, project_id="p", op={"op": "fail"})
    assert events == [("first", "p"), ("second", "p")]
    assert sys.modules["notify_log"].failures == ["first failed", "second failed"]
    assert "plugin n.first: on_schema_applied failed" in caplog.messages
    assert "plugin n.second: on_schema_applied failed" in caplog.messages


async def test_lifecycle_runs_in_order_and_shutdown_in_reverse(
    fake_distributions: FakeDistributions, caplog: pytest.LogCaptureFixture
) -> None:
    events = notifying_plugins(fake_distributions)
    plugins = load_plugins(settings(enabled=["n.second", "n.first"]))
    await plugins.call_lifecycle("startup", tessera=None)
    await plugins.call_shutdown("shutdown", within=10, tessera=None)
    assert events == [
        ("second", "startup"),
        ("first", "startup"),
        ("first", "shutdown"),
        ("second", "shutdown"),
    ]
    assert "stopping: plugin n.second: shutdown failed" in caplog.messages


def test_a_plugin_may_not_both_wrap_and_implement_a_hook(
    fake_distributions: FakeDistributions,
) -> None:
    fake_distributions.add(
        "tests-mixed",
        {"mixed": "mixed_plugin"},
        {
            "mixed_plugin": """
                from kernel import hookimpl

                @hookimpl(specname="register_operators")
                def operators():
                    return []

                @hookimpl(wrapper=True, specname="register_operators")
                def around_operators():
                    return (yield)
            """
        },
    )
    with pytest.raises(PluginError) as raised:
        load_plugins(settings())
    assert str(raised.value) == (
        "plugin mixed: register_operators is both a wrapper and an implementation; "
        "move the wrapper to a plugin of its own"
    )
