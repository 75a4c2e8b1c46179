"""Each component's slice of the settings (SettingsView): named and typed as Settings declares it,
taken by every component instead of the whole Settings."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types
import typing
from dataclasses import fields
from pathlib import Path

import pytest

import infra
from infra.config.settings import Settings, SettingsView

pytestmark = pytest.mark.unit

INFRA = Path(infra.__file__).parent
MODULES = [
    importlib.import_module(module.name)
    for module in pkgutil.walk_packages([str(INFRA)], prefix="infra.")
    if not module.ispkg and module.name != "infra.__main__"
]
VIEWS = sorted(
    {value for module in MODULES for value in vars(module).values() if isinstance(value, type)} - {SettingsView},
    key=lambda cls: cls.__name__,
)
VIEWS = [cls for cls in VIEWS if issubclass(cls, SettingsView)]
COMPONENTS = 15  # the `restdemo:<area>:<Name>` components


def plain(annotation: object) -> object:
    """The type without pydantic's validators (Annotated), a Literal as its values' type, unions as sets."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return plain(args[0])
    if origin is typing.Literal:
        return type(args[0])
    if origin in (typing.Union, types.UnionType):
        return frozenset(plain(arg) for arg in args)
    if origin is not None:
        return (origin, *(plain(arg) for arg in args))
    return annotation


def declared(name: str) -> object:
    if name in Settings.model_fields:
        return plain(Settings.model_fields[name].annotation)
    member = inspect.getattr_static(Settings, name)
    assert isinstance(member, property), f"Settings.{name} is neither a setting nor a property"
    return plain(typing.get_type_hints(member.fget)["return"])


def test_there_is_a_view_per_component():
    assert [cls.__name__ for cls in VIEWS] == [
        "AdminSettings",
        "AlarmSettings",
        "CertificateSettings",
        "DatabaseSettings",
        "ImageSettings",
        "LoadBalancerSettings",
        "MonitoringSettings",
        "NetworkSettings",
        "NodeGroupSettings",
        "PullSettings",
        "RegistrySettings",
        "SecretsKeySettings",
        "StateSettings",
        "SwarmServiceSettings",
        "SwarmSettings",
        "VolumeFileSystemSettings",
    ]


@pytest.mark.parametrize("view", VIEWS, ids=lambda cls: cls.__name__)
def test_a_view_names_and_types_its_fields_as_settings_declares_them(view):
    hints = typing.get_type_hints(view)
    for view_field in fields(view):
        assert plain(hints[view_field.name]) == declared(view_field.name), f"{view.__name__}.{view_field.name}"


@pytest.mark.parametrize("view", VIEWS, ids=lambda cls: cls.__name__)
def test_a_view_copies_the_values_of_the_validated_settings(view):
    settings = Settings(platform="local", service_name="shop", replicas=2)
    copied = view.of(settings)
    assert {f.name: getattr(copied, f.name) for f in fields(view)} == {
        f.name: getattr(settings, f.name) for f in fields(view)
    }


def test_no_component_takes_the_whole_settings():
    """Every ComponentResource's `settings` is a view: what it reads is in its signature."""
    takers, components = [], []
    for path in INFRA.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            if not any(ast.unparse(base).endswith("ComponentResource") for base in cls.bases):
                continue
            components.append(cls.name)
            for function in (n for n in ast.walk(cls) if isinstance(n, ast.FunctionDef)):
                for arg in [*function.args.args, *function.args.kwonlyargs]:
                    if arg.annotation is not None and ast.unparse(arg.annotation) == "Settings":
                        takers.append(f"{path.relative_to(INFRA.parent)}:{cls.name}.{function.name}")
    assert len(components) == COMPONENTS and takers == []
