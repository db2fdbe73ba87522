"""The run's log collector leaves nothing behind in the temporary folder."""

import logging

from thresher.runlog import RunLog


def test_the_temporary_folder_goes_with_the_run() -> None:
    with RunLog() as runlog:
        logging.getLogger("thresher.test").info("hello")
        folder = runlog.dir
        runlog.close()  # the flow closes it and copies log.txt before the block ends
        assert "hello" in runlog.log_path.read_text()
    assert not folder.exists()
