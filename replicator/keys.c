/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ed25519 key pairs for `peer bootstrap` and SHA256 host key fingerprints
 * in the form OpenSSH prints ("SHA256:" + unpadded base64).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirrorfs/util.h"
#include "repl_i.h"
#include "ssh_i.h"

int repl_key_fingerprint(ssh_key key, char **ret)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp, *copy;

	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) < 0)
		return repl_ssh_err(NULL, "cannot hash the public key");
	fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	ssh_clean_pubkey_hash(&hash);
	if (!fp)
		return -ENOMEM;
	copy = strdup(fp);
	ssh_string_free_char(fp);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	return 0;
}

/* Create `path` exclusively with `mode` and write `text` to it durably. */
static int write_new_file(const char *path, mode_t mode, const char *text)
{
	int fd, r;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return repl_fail(-errno, "cannot create '%s': %m", path);
	/* O_CREAT honours the umask; the private key must be exactly 0600. */
	r = fchmod(fd, mode) < 0 ? -errno : 0;
	if (r == 0)
		r = util_write_all(fd, text, strlen(text));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0) {
		unlink(path);
		return repl_fail(r, "cannot write '%s': %s", path, strerror(-r));
	}
	return 0;
}

int repl_key_generate(const char *private_path, const char *comment, char **ret_public_line)
{
	ssh_key key = NULL;
	char *priv = NULL, *pub = NULL, *line = NULL, *pub_path = NULL;
	int r;

	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
		r = repl_ssh_err(NULL, "cannot generate an ed25519 key");
		goto out;
	}
	if (ssh_pki_export_privkey_base64(key, NULL, NULL, NULL, &priv) != SSH_OK ||
	    ssh_pki_export_pubkey_base64(key, &pub) != SSH_OK) {
		r = repl_ssh_err(NULL, "cannot export the key");
		goto out;
	}
	if (asprintf(&line, "%s %s%s%s\n", ssh_key_type_to_char(SSH_KEYTYPE_ED25519), pub,
		     comment && *comment ? " " : "", comment ? comment : "") < 0 ||
	    asprintf(&pub_path, "%s.pub", private_path) < 0) {
		line = pub_path = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = write_new_file(private_path, 0600, priv);
	if (r < 0)
		goto out;
	r = write_new_file(pub_path, 0644, line);
	if (r < 0) {
		unlink(private_path);
		goto out;
	}
	if (ret_public_line) {
		line[strcspn(line, "\n")] = '\0';
		*ret_public_line = line;
		line = NULL;
	}
out:
	free(line);
	free(pub_path);
	if (priv) {
		explicit_bzero(priv, strlen(priv));
		ssh_string_free_char(priv);
	}
	if (pub)
		ssh_string_free_char(pub);
	ssh_key_free(key);
	return r;
}

int repl_key_fingerprint_file(const char *public_path, char **ret_fingerprint)
{
	ssh_key key = NULL;
	int r;

	r = ssh_pki_import_pubkey_file(public_path, &key);
	if (r == SSH_EOF)
		return repl_fail(-ENOENT, "cannot read public key '%s': %s", public_path,
				 strerror(ENOENT));
	if (r != SSH_OK)
		return repl_fail(-EINVAL, "cannot read public key '%s': not an OpenSSH public key",
				 public_path);
	r = repl_key_fingerprint(key, ret_fingerprint);
	ssh_key_free(key);
	return r;
}

int repl_key_fingerprint_line(const char *public_line, char **ret_fingerprint)
{
	char *copy, *type, *b64, *save = NULL;
	enum ssh_keytypes_e kt;
	ssh_key key = NULL;
	int r;

	copy = strdup(public_line);
	if (!copy)
		return -ENOMEM;
	type = strtok_r(copy, " \t\r\n", &save);
	b64 = type ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	kt = type ? ssh_key_type_from_name(type) : SSH_KEYTYPE_UNKNOWN;
	if (!b64 || kt == SSH_KEYTYPE_UNKNOWN ||
	    ssh_pki_import_pubkey_base64(b64, kt, &key) != SSH_OK) {
		r = repl_fail(-EINVAL, "invalid public key line: expected 'TYPE BASE64 [COMMENT]'");
		goto out;
	}
	r = repl_key_fingerprint(key, ret_fingerprint);
out:
	ssh_key_free(key);
	free(copy);
	return r;
}
