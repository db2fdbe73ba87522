"""Sharing a dataset with other users, by e-mail (Lightly's ``collaboration/access``).

The owner sets the whole list at once (:func:`share_only_with`; ``[]`` revokes everyone) and
reads it back (:func:`shared_users`). A user on the list may read the dataset, schedule runs of
it, make tags, export and download (see :mod:`thresher.platform.access`); revoking takes effect
at their next request.

Only e-mails of users the server knows can be on the list: an unknown one is refused, naming
it and the fix (``thresher user add EMAIL``), rather than kept for a user who may never exist.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, func, select

from thresher.platform.access import dataset_for
from thresher.platform.core import Platform
from thresher.platform.errors import Invalid
from thresher.platform.models import DatasetShare, User
from thresher.wire import SharedAccessConfigData, now_ms

#: The one access type there is (Lightly's ``SharedAccessType``).
WRITE = "WRITE"


def config_id(dataset_id: str) -> str:
    """The id of a dataset's (one) shared-access config: derived from the dataset's id."""
    return hashlib.sha256(f"shared-access:{dataset_id}".encode()).hexdigest()[:24]


def _known_users(p: Platform, emails: list[str]) -> dict[str, str]:
    """``{lower-cased e-mail: the user's e-mail as stored}`` for the e-mails of known users."""
    wanted = {e.lower() for e in emails}
    with p.session() as s:
        found = s.scalars(select(User.email).where(func.lower(User.email).in_(wanted)))
        return {e.lower(): e for e in found}


def _check_emails(p: Platform, owner_email: str, emails: list[str]) -> list[str]:
    """The e-mails as the users' stored e-mails, de-duplicated, order kept.

    Raises:
        Invalid: a malformed e-mail, the owner's own, or one no user has.
    """
    cleaned = [e.strip() for e in emails]
    bad = [e for e in cleaned if "@" not in e or len(e) > 320 or any(c.isspace() for c in e)]
    if bad:
        raise Invalid(
            f"Not an e-mail address: {', '.join(repr(e) for e in bad)}; pass addresses such as "
            "'bob@example.com' in user_emails."
        )
    if any(e.lower() == owner_email.lower() for e in cleaned):
        raise Invalid(
            f"{owner_email} is the dataset owner's own e-mail: the owner has every right "
            "already; leave it out of user_emails."
        )
    known = _known_users(p, cleaned)
    unknown = [e for e in cleaned if e.lower() not in known]
    if unknown:
        raise Invalid(
            f"No user has the e-mail {', '.join(dict.fromkeys(unknown))}: create the user on "
            "the server first (thresher user add EMAIL), then share again. Nothing was changed."
        )
    return list(dict.fromkeys(known[e.lower()] for e in cleaned))


def share_only_with(
    p: Platform,
    user: User,
    dataset_id: str,
    emails: list[str],
    *,
    teams: list[str] | None = None,
) -> str:
    """Share the dataset with exactly these users; ``[]`` revokes everyone.

    Args:
        p: The platform.
        user: The caller; must own the dataset.
        dataset_id: The dataset.
        emails: The users' e-mails (matched case-insensitively); replaces the list.
        teams: Lightly's teams; thresher has none, so it must be empty.

    Returns:
        The id of the dataset's shared-access config (:func:`config_id`).

    Raises:
        NotFound: no such dataset.
        Forbidden: the caller is not the dataset's owner.
        Invalid: a malformed or unknown e-mail, the owner's own, or teams.
    """
    if teams:
        raise Invalid(
            "thresher has no teams: share with users' e-mails (user_emails) and leave teams empty."
        )
    with p.session() as s:
        owner = s.get(User, dataset_for(s, user, dataset_id, "own").user_id)
        owner_email = owner.email if owner is not None else user.email
    wanted = _check_emails(p, owner_email, emails)
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "own")  # it may have been deleted meanwhile
        old = {
            row.email: row
            for row in s.scalars(select(DatasetShare).where(DatasetShare.dataset_id == d.id))
        }
        gone = [e for e in old if e not in wanted]
        if gone:
            s.execute(
                delete(DatasetShare).where(
                    DatasetShare.dataset_id == d.id, DatasetShare.email.in_(gone)
                )
            )
        now = now_ms()
        for email in wanted:
            if email not in old:
                s.add(DatasetShare(dataset_id=d.id, email=email, access_type=WRITE, created_at=now))
    return config_id(dataset_id)


def shared_users(p: Platform, user: User, dataset_id: str) -> list[str]:
    """The e-mails the dataset is shared with, in the order they were added (owner only)."""
    return [e for c in access_configs(p, user, dataset_id) for e in c.users]


def access_configs(p: Platform, user: User, dataset_id: str) -> list[SharedAccessConfigData]:
    """Lightly's view: one ``WRITE`` config listing the users, or none when not shared.

    Raises:
        NotFound: no such dataset.
        Forbidden: the caller is not the dataset's owner.
    """
    with p.session() as s:
        d = dataset_for(s, user, dataset_id, "own")
        rows = list(
            s.scalars(
                select(DatasetShare)
                .where(DatasetShare.dataset_id == d.id)
                .order_by(DatasetShare.created_at, DatasetShare.email)
            )
        )
        if not rows:
            return []
        return [
            SharedAccessConfigData(
                id=config_id(d.id),
                owner=d.user_id,
                access_type=WRITE,
                users=[r.email for r in rows],
                teams=[],
                created_at=min(r.created_at for r in rows),
                last_modified_at=max(r.created_at for r in rows),
            )
        ]
