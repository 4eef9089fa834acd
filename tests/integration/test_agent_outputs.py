"""Output variables (docs/protocol.md 3.5, 4.6): the real agent, the real
queue, the real dockerd. A step sets outputs with ##skiff[set-output] and
through $SKIFF_OUTPUT; later host and container steps see them as
SKIFF_OUTPUT_<NAME>; the job's status and skiffctl status show them. A
value masked with ##skiff[set-secret] reaches later steps but never the
log or the outputs the queue keeps. And steps that attack the output file
(a link to /etc/shadow or to a file of the test, a FIFO, a directory, a
huge file) or send bad lines (over the cap, invalid names, non-UTF-8)
get log lines, never a stuck or crashed agent."""
import json
import os
import secrets
import signal

import dockerenv
import harness
from agentfix import AgentTestCase, log_stream


class OutputsTests(AgentTestCase):
    queue_args = ("--heartbeat-interval", "1s")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.eng = dockerenv.Engine()
        cls.images = dockerenv.build_images(cls.eng)
        cls.busybox = cls.images["busybox"]

    def run_job(self, *steps, timeout=60, **extra):
        job = self.submit_job(self.steps_job(*steps, **extra))
        return job, self.finished(job, timeout=timeout)

    def outputs(self, job):
        r = self.q.request("GET", "/v1/jobs/%s" % job)
        self.assertEqual(r.status, 200, r)
        return r.json()["outputs"]

    def test_both_forms_to_host_and_container_steps(self):
        self.agent()
        job, st = self.run_job(
            {"name": "set", "script":
             "echo \"##skiff[set-output name='GREETING' value='hello |'world|'']\"\n"
             "echo 'VERSION=1.4.2' >> \"$SKIFF_OUTPUT\"\n"
             "printf 'EQ=a=b\\r\\n\\nUNI=h\\303\\251\\n' >> \"$SKIFF_OUTPUT\"\n"},
            {"name": "box", "image": self.busybox, "script":
             "echo \"box: $SKIFF_OUTPUT_GREETING $SKIFF_OUTPUT_VERSION "
             "$SKIFF_OUTPUT_EQ\"\n"
             "echo 'FROM_BOX=made in a container' >> \"$SKIFF_OUTPUT\"\n"
             "echo 'VERSION=1.4.3' >> \"$SKIFF_OUTPUT\"\n"},
            {"name": "nonroot box", "image": self.images["nonroot"],
             "script": "id -u; echo \"NONROOT=$SKIFF_OUTPUT_FROM_BOX\" >> "
                       "\"$SKIFF_OUTPUT\""},
            {"name": "host", "script":
             "echo \"host: $SKIFF_OUTPUT_FROM_BOX/$SKIFF_OUTPUT_VERSION/"
             "$SKIFF_OUTPUT_NONROOT\"\n"
             "test -f \"$SKIFF_OUTPUT\" && test ! -s \"$SKIFF_OUTPUT\" && "
             "echo fresh\n"
             # Not this step's to replace: the directory is the agent's.
             "if rm -f \"$SKIFF_OUTPUT\" 2>/dev/null; then echo removed; "
             "else echo kept; fi\n"})
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(job)
        out = log_stream(log, "out").decode()
        self.assertIn("box: hello 'world' 1.4.2 a=b\n", out)
        self.assertIn("1000\n", out)
        self.assertIn("host: made in a container/1.4.3/made in a container\n",
                      out)
        # Run as the step user (the agent is root), the step cannot replace
        # its file; as the agent's own user it could (and the agent reads
        # it as it would a container's).
        self.assertIn("fresh\n%s\n" % ("kept" if os.geteuid() == 0 else
                                          "removed"), out)
        # The message stays in the log, as artifact messages do.
        self.assertIn("##skiff[set-output name='GREETING' value='hello "
                      "|'world|'']", out)
        skf = log_stream(log, "skf").decode()
        self.assertIn("output 'GREETING' set", skf)
        self.assertIn("3 outputs set through $SKIFF_OUTPUT", skf)
        want = {"GREETING": "hello 'world'", "VERSION": "1.4.3", "EQ": "a=b",
                "UNI": "h\u00e9", "FROM_BOX": "made in a container",
                "NONROOT": "made in a container"}
        self.assertEqual(self.outputs(job), want)
        # skiffctl status: one line an output; --json as the API has it.
        text = self.q.ctl("status", job).stdout.decode()
        self.assertIn("output      GREETING=hello 'world'\n", text)
        self.assertIn("output      UNI=h\u00e9\n", text)
        self.assertIn("output      NONROOT=made in a container\n", text)
        js = json.loads(self.q.ctl("status", "--json", job).stdout)
        self.assertEqual(js["outputs"], want)
        # The list leaves them out; a job without outputs has {}.
        r = self.q.request("GET", "/v1/jobs")
        self.assertEqual(r.status, 200)
        self.assertNotIn("outputs", r.json()["jobs"][0])
        job2, st2 = self.run_job("true")
        self.assertEqual(self.outputs(job2), {})
        # Every status of one job has them, the answer of submit too.
        r = self.q.submit(harness.sign_job(self.steps_job("true"), self.key,
                                           self.pool, "1h"))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["outputs"], {})
        self.finished(r.json()["id"])
        self.assertIn("outputs     -\n",
                      self.q.ctl("status", job2).stdout.decode())

    def test_secret_reaches_later_steps_never_the_log_or_outputs(self):
        self.agent()
        tok = "rt-" + secrets.token_hex(12)
        early = "early-" + secrets.token_hex(8)
        job, st = self.run_job(
            {"name": "obtain", "script":
             # an output set before the value is masked is masked too
             "echo 'EARLY=%s' >> \"$SKIFF_OUTPUT\"\n"
             "echo \"##skiff[set-secret value='%s']\"\n"
             "echo \"##skiff[add-mask value='%s']\"\n"
             "echo \"##skiff[set-output name='TOKEN' value='%s']\"\n"
             "echo 'TOKEN_FILE=%s' >> \"$SKIFF_OUTPUT\"\n"
             "echo 'PREFIXED=Bearer %s' >> \"$SKIFF_OUTPUT\"\n"
             "echo \"plain %s\"; echo \"err %s\" >&2\n" %
             (early, tok, early, tok, tok, tok, tok, tok)},
            {"name": "use on host", "script":
             "test \"$SKIFF_OUTPUT_TOKEN\" = '%s' && echo host-same\n"
             "test \"$SKIFF_OUTPUT_EARLY\" = '%s' && echo early-same\n"
             "echo \"$SKIFF_OUTPUT_TOKEN_FILE\"\n" % (tok, early)},
            {"name": "use in box", "image": self.busybox, "script":
             "test \"$SKIFF_OUTPUT_PREFIXED\" = 'Bearer %s' && echo box-same\n"
             % tok})
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(job)
        self.assertNotIn(tok.encode(), log)
        self.assertNotIn(early.encode(), log)
        out = log_stream(log, "out").decode()
        self.assertIn("##skiff[set-secret value='***']\n", out)
        self.assertIn("##skiff[set-output name='TOKEN' value='***']\n", out)
        self.assertIn("plain ***\n", out)
        self.assertIn("host-same\nearly-same\n***\n", out)
        self.assertIn("box-same\n", out)
        outs = self.outputs(job)
        self.assertEqual(outs, {"EARLY": "***", "TOKEN": "***",
                                "TOKEN_FILE": "***",
                                "PREFIXED": "Bearer ***"})
        text = self.q.ctl("status", job).stdout.decode()
        self.assertNotIn(tok, text)

    def test_hostile_output_files(self):
        a = self.agent()
        leak = os.path.join(self.tmp, "leak.env")
        with open(leak, "w") as f:
            f.write("LEAKED=from the host\n")
        replace = "rm -rf \"$SKIFF_OUTPUT\"; "
        job, st = self.run_job(
            {"name": "shadow", "image": self.busybox,
             "script": replace + "ln -s /etc/shadow \"$SKIFF_OUTPUT\""},
            {"name": "host file", "image": self.busybox,
             "script": replace + "ln -s %s \"$SKIFF_OUTPUT\"" % leak},
            {"name": "fifo", "image": self.busybox,
             "script": replace + "mkfifo \"$SKIFF_OUTPUT\""},
            {"name": "dir", "image": self.busybox,
             "script": replace + "mkdir \"$SKIFF_OUTPUT\"; "
                       "echo IN_DIR=1 > \"$SKIFF_OUTPUT/x\""},
            {"name": "huge", "image": self.busybox,
             "script": "head -c 70000 /dev/zero | tr '\\0' a | "
                       "sed 's/^/HUGE=/' >> \"$SKIFF_OUTPUT\""},
            {"name": "lines", "image": self.busybox, "script":
             "{ printf 'LONG=%s\\n' \"$(head -c 5000 /dev/zero | tr '\\0' x)\"\n"
             "  echo '1BAD=x'; echo 'bad-name=x'; echo '=x'; echo 'noequals'\n"
             "  echo 'SKIFF_OUTPUT_X=y' | sed 's/^/-/'\n"
             "  printf 'NONUTF=\\377\\376\\n'; printf 'CTRL=a\\033[2Jb\\n'\n"
             "  printf '%s=x\\n' \"$(head -c 65 /dev/zero | tr '\\0' N)\"\n"
             "  echo 'GOOD=still read'\n"
             "} >> \"$SKIFF_OUTPUT\"\n"
             "echo \"##skiff[set-output name='bad name' value='x']\"\n"
             "echo \"##skiff[set-output name='NOVALUE']\"\n"
             "printf '##skiff[set-output name=\"NU\" value=\"\\377\"]\\n'\n"
             "printf \"##skiff[set-output name='NU2' value='\\377']\\n\"\n"
             "echo \"##skiff[set-output name='OVER' value='$(head -c 5000 "
             "/dev/zero | tr '\\0' y)']\"\n"
             "echo \"##skiff[set-output name='MSG_OK' value='fine']\"\n"},
            {"name": "after", "script":
             "echo \"after: [$SKIFF_OUTPUT_GOOD] [$SKIFF_OUTPUT_LEAKED] "
             "[$SKIFF_OUTPUT_IN_DIR] [$SKIFF_OUTPUT_MSG_OK]\"; "
             "test -f \"$SKIFF_OUTPUT\" && test ! -s \"$SKIFF_OUTPUT\" && "
             "echo fresh"})
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["exit_codes"], [0] * 7)
        log = self.log_of(job)
        skf = log_stream(log, "skf").decode()
        self.assertEqual(skf.count("$SKIFF_OUTPUT ignored: the step replaced "
                                   "it with a symbolic link"), 2, skf)
        self.assertEqual(skf.count("$SKIFF_OUTPUT ignored: not a regular "
                                   "file"), 2, skf)
        self.assertIn("$SKIFF_OUTPUT ignored: over 65536 bytes", skf)
        self.assertIn("$SKIFF_OUTPUT line 1 refused: the value is over 4096 "
                      "bytes", skf)
        for n in (2, 3, 4, 6, 9):
            self.assertIn("$SKIFF_OUTPUT line %d refused: not a valid name" % n,
                          skf)
        self.assertIn("$SKIFF_OUTPUT line 5 refused: no '='", skf)
        for n in (7, 8):
            self.assertIn("$SKIFF_OUTPUT line %d refused: the value is not "
                          "UTF-8 or holds a control character" % n, skf)
        self.assertNotIn("$SKIFF_OUTPUT line 10 refused", skf)
        self.assertEqual(skf.count("refused a ##skiff[set-output] message: "
                                   "not a valid name"), 1, skf)
        self.assertEqual(skf.count("refused a ##skiff[set-output] message: "
                                   "the value is not UTF-8"), 1, skf)
        # No value, double quotes, a line over the cap: malformed.
        self.assertEqual(skf.count("ignored a malformed ##skiff[set-output] "
                                   "message"), 3, skf)
        # Nor is any of them (or the line shown for the long one) taken
        # for an unknown service message.
        self.assertNotIn("malformed or unknown", skf)
        out = log_stream(log, "out").decode(errors="replace")
        self.assertIn("after: [still read] [] [] [fine]\nfresh\n", out)
        self.assertIn("##skiff[set-output ...] (line too long, not shown)\n",
                      out)
        self.assertNotIn("from the host", out)
        self.assertEqual(self.outputs(job), {"GOOD": "still read",
                                             "MSG_OK": "fine"})
        # The agent is alive and takes the next job.
        self.assertTrue(a.running())
        job2, st2 = self.run_job("echo \"##skiff[set-output name='N' "
                                 "value='2']\"")
        self.assertEqual(st2["state"], "succeeded", st2)
        self.assertEqual(self.outputs(job2), {"N": "2"})
        # And it leaves cleanly (under the sanitizers: no leak).
        a.signal(signal.SIGTERM)
        self.assertEqual(a.wait_exit(20), 10)

    def test_caps_on_count_and_total(self):
        self.agent()
        # 70 outputs: the first 64 are kept, the rest refused; then values
        # of 4000 bytes until the 16 KiB total is reached.
        job, st = self.run_job(
            {"name": "many", "script":
             "i=0; while [ $i -lt 70 ]; do echo \"N$i=v\" >> "
             "\"$SKIFF_OUTPUT\"; i=$((i+1)); done"})
        self.assertEqual(st["state"], "succeeded", st)
        outs = self.outputs(job)
        self.assertEqual(len(outs), 64)
        self.assertIn("N63", outs)
        self.assertNotIn("N64", outs)
        skf = log_stream(self.log_of(job), "skf").decode()
        self.assertIn("$SKIFF_OUTPUT line 65 refused: the job's outputs are "
                      "at their cap", skf)
        big = "x" * 4000
        job, st = self.run_job(
            {"name": "big", "script":
             "for n in A B C D E; do echo \"$n=%s\" >> \"$SKIFF_OUTPUT\"; "
             "done" % big})
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(sorted(self.outputs(job)), ["A", "B", "C", "D"])

    def test_failed_job_keeps_its_outputs(self):
        self.agent()
        job, st = self.run_job(
            {"name": "fails", "script": "echo 'PARTIAL=1' >> \"$SKIFF_OUTPUT\"; "
             "echo \"##skiff[set-output name='WHY' value='disk']\"; exit 3"},
            "echo never")
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["exit_codes"], [3])
        self.assertEqual(self.outputs(job), {"PARTIAL": "1", "WHY": "disk"})

    def test_store_gains_outputs_on_upgrade(self):
        """A store from before outputs: SQLite gets the column at the next
        start; PostgreSQL's schema version 2 is migrated to 3. A job ended
        before has {} as its outputs; one after keeps its own."""
        agent = self.agent()
        old, st = self.run_job("echo 'OLD=1' >> \"$SKIFF_OUTPUT\"")
        self.assertEqual(st["state"], "succeeded", st)
        agent.kill9()
        self.q.stop()
        if harness.STORE == "postgres":
            self.q.sql(
                "DROP FUNCTION op_complete(bytea, int, text, text, jsonb, "
                "text, text, bigint, bigint, jsonb); "
                "ALTER TABLE jobs DROP COLUMN outputs; "
                "UPDATE meta SET v = '2' WHERE k = 'schema_version'")
        else:
            self.q.sql("ALTER TABLE jobs DROP COLUMN outputs")
        self.q.start()
        if harness.STORE == "postgres":
            self.assertEqual(self.q.sql("SELECT v FROM meta WHERE "
                                        "k = 'schema_version'"), [["3"]])
            self.assertIn("schema at version 3", self.q.log_text())
            # The complete of version 2 stays for replicas not yet
            # upgraded.
            self.assertEqual(self.q.sql(
                "SELECT count(*) FROM pg_proc WHERE proname = "
                "'op_complete'"), [["2"]])
        self.assertEqual(self.outputs(old), {})
        self.agent(name="agent2")
        job, st = self.run_job("echo 'NEW=2' >> \"$SKIFF_OUTPUT\"")
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(self.outputs(job), {"NEW": "2"})


if __name__ == "__main__":
    harness.main()
