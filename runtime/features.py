"""The service's features (the ``FEATURES`` setting) and everything derived from them.

A feature is a module exporting ``FEATURE = schema.app.Feature(...)``: its
domain (deciders, events, errors, upcasters), its read side (consumers, views,
live topics) and its GraphQL mixins. The composition root loads the list once
(``load_features``) and takes every registry from it: the deciders, the event
registry, the rejection types, the consumers and their rebuild factories, the
live routing and sources, the context's views and catalog, the projection
status attention counters, the retry follow-ups and the schema. Nothing else
lists features.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import strawberry

from domain.aggregate import AnyDecider, Domain, DomainError, deciders, rejection_types
from domain.codec import EventRegistry, build_registry
from projections.documents import DocumentStore
from projections.projector import ReadSides
from schema.app import ExtensionFactory, Feature, build_schema, catalog
from schema.context import Catalog, views_by_type
from schema.limits import Limits


class FeatureError(ValueError):
    """A ``FEATURES`` entry does not name a module exporting a ``Feature``."""


@dataclass(frozen=True)
class Features:
    """The enabled features, in ``FEATURES`` order, and what the service derives from them."""

    features: tuple[Feature, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @cached_property
    def domains(self) -> tuple[Domain, ...]:
        return tuple(f.domain for f in self.features if f.domain is not None)

    @cached_property
    def deciders(self) -> dict[type, AnyDecider]:
        """Command class -> decider (``ApplicationService``)."""
        return deciders(self.domains)

    @cached_property
    def registry(self) -> EventRegistry:
        """Every feature's events and upcasters."""
        return build_registry(self.domains)

    @cached_property
    def rejection_types(self) -> tuple[type[DomainError], ...]:
        """The rejection classes a stored outcome may be rebuilt as."""
        return rejection_types(self.domains)

    @cached_property
    def read_sides(self) -> ReadSides:
        """The consumers (handlers, rebuild factories), views, live sources, attention
        counters and retry follow-ups of every feature's read side."""
        return ReadSides(f.read_side for f in self.features if f.read_side is not None)

    def views(self, documents: DocumentStore, max_page_size: int) -> dict[type, object]:
        """The ``Context.views``: every feature's read views, by class."""
        return views_by_type(self.read_sides.views(documents, max_page_size))

    @cached_property
    def catalog(self) -> Catalog:
        """The ``Context.catalog``: read models a consistency wait covers, ids by prefix."""
        return catalog(self.features, self.read_sides.read_models)

    def schema(
        self, limits: Limits | None = None, *, extensions: Sequence[ExtensionFactory] = ()
    ) -> strawberry.Schema:
        return build_schema(self.features, limits, extensions=extensions)


def load_feature(path: str) -> Feature:
    """The ``FEATURE`` of the module at import path ``path``."""
    try:
        module = importlib.import_module(path)
    except ImportError as error:
        raise FeatureError(f"FEATURES: cannot import {path!r}: {error}") from error
    feature = vars(module).get("FEATURE")
    if not isinstance(feature, Feature):
        raise FeatureError(f"FEATURES: {path!r} exports no FEATURE (a schema.app.Feature)")
    return feature


def load_features(paths: str | Sequence[str]) -> Features:
    """The features named by ``paths`` (comma-separated import paths, or a sequence)."""
    names = paths.split(",") if isinstance(paths, str) else paths
    features = tuple(load_feature(name.strip()) for name in names if name.strip())
    seen: set[str] = set()
    for feature in features:
        if feature.name in seen:
            raise FeatureError(f"FEATURES: feature {feature.name!r} is listed twice")
        seen.add(feature.name)
    return Features(features)
