"""Tags and the dataset's sample order (Lightly's ``_TagsMixin`` and ``get_filenames``)."""

from __future__ import annotations

from collections.abc import Iterator

from thresher.client._core import _ClientCore
from thresher.client.errors import TagDoesNotExistError
from thresher.wire import CreateEntityResponse, TagCreateRequest, TagData

INITIAL_TAG = "initial-tag"


def _bits(bit_mask_data: str) -> Iterator[int]:
    value, k = int(bit_mask_data, 16), 0
    while value:
        if value & 1:
            yield k
        value >>= 1
        k += 1


class _TagsMixin(_ClientCore):
    def get_filenames(self) -> list[str]:
        """The current dataset's sample file names, in sample order (bit k of a tag = k-th)."""
        return self._mappings("fileName")

    def get_all_tags(self) -> list[TagData]:
        """The current dataset's tags, newest first."""
        body = self._http.get_json(f"/v1/datasets/{self.dataset_id}/tags")
        return [TagData.model_validate(t) for t in body]

    def get_tag_by_id(self, tag_id: str) -> TagData:
        """A tag of the current dataset by id.

        Raises:
            ApiException: 404 when the dataset has no such tag.
        """
        return TagData.model_validate(
            self._http.get_json(f"/v1/datasets/{self.dataset_id}/tags/{tag_id}")
        )

    def get_tag_by_name(self, tag_name: str) -> TagData:
        """A tag of the current dataset by name.

        Raises:
            TagDoesNotExistError: No tag has this name.
        """
        ids = {t.name: t.id for t in self.get_all_tags()}
        if tag_name not in ids:
            raise TagDoesNotExistError(f"Your tag_name does not exist: {tag_name}.")
        return self.get_tag_by_id(ids[tag_name])

    def get_filenames_in_tag(
        self,
        tag_data: TagData,
        filenames_on_server: list[str] | None = None,
        exclude_parent_tag: bool = False,
    ) -> list[str]:
        """The file names of the tag's samples, in sample order.

        Args:
            tag_data: The tag.
            filenames_on_server: ``get_filenames()`` if you have it already.
            exclude_parent_tag: Leave out the samples of the tag's parent.
        """
        bits = set(_bits(tag_data.bit_mask_data))
        if exclude_parent_tag and tag_data.prev_tag_id is not None:
            bits -= set(_bits(self.get_tag_by_id(tag_data.prev_tag_id).bit_mask_data))
        names = filenames_on_server or self.get_filenames()
        return [n for k, n in enumerate(names) if k in bits]

    def create_tag_from_filenames(
        self, fnames_new_tag: list[str], new_tag_name: str, parent_tag_id: str | None = None
    ) -> CreateEntityResponse:
        """Create a tag of the current dataset holding these files.

        Args:
            fnames_new_tag: The files of the new tag.
            new_tag_name: Its name.
            parent_tag_id: Its parent; default ``initial-tag``.

        Returns:
            The new tag's id as ``CreateEntityResponse`` (as Lightly's client returns).

        Raises:
            RuntimeError: The name is taken, the dataset has no tags, or a file is not a
                sample of the dataset (the message names a valid one).
            StopIteration: Tags exist but none is named ``initial-tag`` (as Lightly's).
        """
        tags = self.get_all_tags()
        if new_tag_name in [t.name for t in tags]:
            raise RuntimeError(f"There already exists a tag with tag_name {new_tag_name}.")
        if not tags:
            raise RuntimeError("There exists no initial-tag for this dataset.")
        if parent_tag_id is None:
            parent_tag_id = next(t.id for t in tags if t.name == INITIAL_TAG)
        names = self.get_filenames()
        wanted = set(fnames_new_tag)
        bits = [k for k, n in enumerate(names) if n in wanted]
        if len(bits) != len(wanted):
            raise RuntimeError(
                "An error occurred when creating the new subset! "
                f"Out of the {len(wanted)} filenames you provided "
                f"to create a new tag, only {len(bits)} have been "
                "found on the server. "
                "Make sure you use the correct filenames. "
                f"Valid filename example from the dataset: {names[0]}"
            )
        value = 0
        for k in bits:
            value |= 1 << k
        body = TagCreateRequest(
            name=new_tag_name,
            prev_tag_id=parent_tag_id,
            bit_mask_data=hex(value),
            tot_size=len(names),
        )
        return CreateEntityResponse.model_validate(
            self._http.send_json("POST", f"/v1/datasets/{self.dataset_id}/tags", body.wire())
        )

    def delete_tag_by_id(self, tag_id: str) -> None:
        """Delete a tag of the current dataset (its samples stay)."""
        self._http.send_json("DELETE", f"/v1/datasets/{self.dataset_id}/tags/{tag_id}")

    def delete_tag_by_name(self, tag_name: str) -> None:
        """Delete the tag with this name.

        Raises:
            TagDoesNotExistError: No tag has this name.
        """
        self.delete_tag_by_id(self.get_tag_by_name(tag_name).id)

    def get_compute_worker_run_tags(self, run_id: str) -> list[TagData]:
        """The tags the run made in the current dataset, newest first."""
        body = self._http.get_json(f"/v1/docker/runs/{run_id}/tags")
        tags = [TagData.model_validate(t) for t in body]
        return [t for t in tags if t.dataset_id == self.dataset_id]
