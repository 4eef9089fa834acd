"""Disk pressure: before a job, with less free space under the Docker root
than SKIFF_DISK_FLOOR, the agent removes unused images oldest first,
sparing the keep-list and the images of running jobs.

This test removes images from the engine, so CTest runs it alone
(RUN_SERIAL): every image present when it starts is put on the keep-list,
except two it makes to be pruned."""
import time

import dockerenv
import harness
from agentfix import AgentTestCase, log_stream


class PruneTests(AgentTestCase):
    def test_prune_oldest_first_sparing_keep_list_and_in_use(self):
        eng = dockerenv.Engine()
        images = dockerenv.build_images(eng)
        busy = images["busybox"]
        old = dockerenv.build_image(eng, "skiff-test/prunable:old", [
            "LABEL dev.skiff.test.generation=old"], dockerenv.busybox_rootfs(
                {"etc/prunable": b"old"}))
        # The engine dates images to the second: make "old" older.
        time.sleep(1.1)
        new = dockerenv.build_image(eng, "skiff-test/prunable:new", [
            "LABEL dev.skiff.test.generation=new"], dockerenv.busybox_rootfs(
                {"etc/prunable": b"new"}))
        self.addCleanup(eng.remove_image, old)
        self.addCleanup(eng.remove_image, new)
        keep = []
        for im in eng.json("GET", "/images/json"):
            for tag in im.get("RepoTags") or []:
                if tag not in (old, new) and tag != "<none>:<none>":
                    keep.append(tag)
        self.assertIn(busy, keep)
        keep.remove(busy)       # spared anyway: the job uses it
        # A floor no disk meets: everything unused and not kept goes.
        self.agent(disk_floor="1000000G", prepull_keep=",".join(keep))
        job = self.submit_job(self.steps_job(
            {"name": "box", "image": busy, "script": "echo still here"}))
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(log_stream(self.log_of(job), "out"), b"still here\n")
        skf = log_stream(self.log_of(job), "skf").decode()
        self.assertIn("below the floor", skf)
        self.assertIn("removed image %s" % old, skf)
        self.assertIn("removed image %s" % new, skf)
        self.assertLess(skf.index(old), skf.index(new))    # oldest first
        self.assertIsNone(eng.image_labels(old))
        self.assertIsNone(eng.image_labels(new))
        for tag in keep + [busy]:
            self.assertIsNotNone(eng.image_labels(tag), tag)


if __name__ == "__main__":
    harness.main()
