/* SPDX-License-Identifier: GPL-2.0-or-later */
/* How many fds this process has open (a leak check for unit tests). */
#ifndef MIRRORFS_TEST_FDCOUNT_H
#define MIRRORFS_TEST_FDCOUNT_H

#include <dirent.h>

static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

#endif
