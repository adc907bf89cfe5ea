/** Messages about what real SSH servers do that our loopback sshd does not: several host keys, chatty login scripts. */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { fingerprintOf, hostKeyMismatch, hostKeyType, openSftpSession, sftpStartProblem } from "../../src/exec/ssh.js";

/** A raw public key blob: SSH string with the algorithm name, then key data. */
function blob(type: string, data: Buffer): Buffer {
  const name = Buffer.from(type, "latin1");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(name.length);
  return Buffer.concat([length, name, data]);
}

describe("host key mismatch", () => {
  it("reads the algorithm of a key blob", () => {
    expect(hostKeyType(blob("ssh-ed25519", Buffer.alloc(36, 7)))).toBe("ssh-ed25519");
    expect(hostKeyType(blob("ecdsa-sha2-nistp256", Buffer.alloc(40, 1)))).toBe("ecdsa-sha2-nistp256");
    expect(hostKeyType(Buffer.from([0, 0, 1]))).toBeNull();
    expect(hostKeyType(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2]))).toBeNull();
  });

  it("says which key the server presented and how to fingerprint that one", () => {
    const key = blob("ssh-ed25519", Buffer.alloc(36, 7));
    const seen = fingerprintOf(key);
    expect(hostKeyMismatch("login.example.org:22", seen, hostKeyType(key), "SHA256:rsa")).toBe(
      `host key for login.example.org:22 is ${seen} (ssh-ed25519), expected SHA256:rsa: refusing to connect ` +
        "(if host_key is another of this server's keys, pin its ed25519 key: ssh-keyscan -t ed25519 -p PORT HOST | ssh-keygen -lf -)",
    );
    expect(hostKeyMismatch("h:22", "SHA256:x", null, "SHA256:y")).toBe("host key for h:22 is SHA256:x, expected SHA256:y: refusing to connect");
  });
});

describe("SFTP start problems", () => {
  it("blames a login script that prints, when the SFTP stream starts with text", () => {
    // "Welc" of "Welcome to ..." read as a packet length, as ssh2 reports it.
    const err = Object.assign(new Error(`Packet length ${Buffer.from("Welc").readUInt32BE(0)} exceeds max length of 262144`), { level: "sftp-protocol" });
    expect(sftpStartProblem("alice@hpc:22", err)).toBe(
      "alice@hpc:22: cannot start SFTP (Packet length 1466264675 exceeds max length of 262144): something printed text before the SFTP server started; " +
        "make login scripts (~/.bashrc, ~/.cshrc) print only in interactive shells",
    );
    expect(sftpStartProblem("alice@hpc:22", new Error("Received exit code 127 while establishing SFTP session"))).toBe(
      "alice@hpc:22: cannot start SFTP (Received exit code 127 while establishing SFTP session)",
    );
  });
});

describe("an SFTP session that fails after it started", () => {
  it("is forgotten, and its error event does not crash the process", async () => {
    const session = new EventEmitter();
    let gone = 0;
    const opened = openSftpSession({ sftp: ((cb: (err: Error | undefined, sftp: unknown) => void) => cb(undefined, session)) as never }, (err) => err, () => gone++);
    expect(await opened).toBe(session);
    // What ssh2 emits on a garbled packet from a login script that prints; an unheard "error" event throws.
    expect(() => session.emit("error", Object.assign(new Error("Packet length 1819043176 exceeds max length of 262144"), { level: "sftp-protocol" }))).not.toThrow();
    session.emit("close");
    expect(gone).toBe(2);
  });

  it("rejects with the start problem when it cannot start", async () => {
    const failing = { sftp: ((cb: (err: Error | undefined) => void) => cb(new Error("Unable to start subsystem: sftp"))) as never };
    await expect(openSftpSession(failing, (err) => new Error(`described: ${err.message}`), () => undefined)).rejects.toThrow("described: Unable to start subsystem: sftp");
  });
});
