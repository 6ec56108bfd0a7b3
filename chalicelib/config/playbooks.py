"""``playbooks.yaml``: the safety envelope's settings and each playbook's options.

``dry_run`` left unset means the stage default: act in ``prod``, plan and record only
everywhere else. A playbook's own ``dry_run`` wins over the global one. ``rate_limit`` is
per playbook and per target (an ECS service, a parameter): at most ``max`` mutating runs
per ``per_minutes``. Options are validated by the playbook's own ``Options`` model.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from chalicelib.config.severity import Strict


class RateLimit(Strict):
    max: int = Field(2, ge=1)
    per_minutes: int = Field(60, ge=1)


class PlaybookSettings(Strict):
    dry_run: bool | None = None
    rate_limit: RateLimit = RateLimit()
    options: dict[str, Any] = Field(default_factory=dict)


class PlaybooksConfig(Strict):
    dry_run: bool | None = None
    max_mutating_actions_per_incident: int = Field(3, ge=0)
    playbooks: dict[str, PlaybookSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_and_valid(self) -> PlaybooksConfig:
        from chalicelib.playbooks import REGISTRY

        for name, settings in self.playbooks.items():
            playbook = REGISTRY.get(name)
            if playbook is None:
                raise ValueError(f"playbooks.{name}: no such playbook (known: {', '.join(sorted(REGISTRY))})")
            if playbook.options is not None:
                try:
                    playbook.options.model_validate(settings.options)
                except ValueError as exc:
                    raise ValueError(f"playbooks.{name}.options: {str(exc).splitlines()[-1].strip()}") from None
        return self

    def settings_for(self, playbook_id: str) -> PlaybookSettings:
        return self.playbooks.get(playbook_id, PlaybookSettings())

    def dry_run_for(self, playbook_id: str, stage: str) -> bool:
        own = self.settings_for(playbook_id).dry_run
        if own is not None:
            return own
        return self.dry_run if self.dry_run is not None else stage != "prod"

    def options_for(self, playbook_id: str) -> Any:
        from chalicelib.playbooks import REGISTRY

        model = REGISTRY[playbook_id].options
        return model.model_validate(self.settings_for(playbook_id).options) if model else None
