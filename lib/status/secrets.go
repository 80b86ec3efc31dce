package status

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
)

// secretCache reads each Secret once per projection.
type secretCache struct {
	core  kubernetes.Interface
	cache map[string]*corev1.Secret
	errs  map[string]error
}

func (c *secretCache) get(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	key := namespace + "/" + name
	if s, ok := c.cache[key]; ok {
		return s, nil
	}
	if err, ok := c.errs[key]; ok {
		return nil, err
	}
	s, err := c.core.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if c.errs == nil {
			c.errs = map[string]error{}
		}
		c.errs[key] = err
		return nil, err
	}
	c.cache[key] = s
	return s, nil
}

// notFound describes a Secret that could not be read.
func notFound(what, namespace, name string, keys string, err error) SecretCheck {
	msg := fmt.Sprintf("%s Secret %s/%s not found: create it with the key %s", what, namespace, name, keys)
	if !apierrors.IsNotFound(err) {
		msg = fmt.Sprintf("%s Secret %s/%s cannot be read (%v): allow the service account to get it", what, namespace, name, err)
	}
	return SecretCheck{Reason: v1alpha1.ReasonSecretNotFound, Message: msg}
}

// provider checks a GitProvider's credentials Secret the way lib/catalog reads it.
func (c *secretCache) provider(ctx context.Context, p *v1alpha1.GitProvider) SecretCheck {
	if p.Spec.SecretRef == nil {
		return SecretCheck{}
	}
	const credentialKeys = `"password" (with "username"), "token" or "ssh-privatekey" (with "known_hosts")`
	name := p.Spec.SecretRef.Name
	s, err := c.get(ctx, p.Namespace, name)
	if err != nil {
		return notFound("credentials", p.Namespace, name, credentialKeys, err)
	}
	has := func(k string) bool { return len(s.Data[k]) > 0 }
	switch {
	case has(catalog.KeyPassword) && has(catalog.KeyUsername):
		return SecretCheck{Keys: fmt.Sprintf("%q and %q", catalog.KeyUsername, catalog.KeyPassword)}
	case has(catalog.KeyPassword):
		return SecretCheck{Keys: fmt.Sprintf("%q", catalog.KeyPassword)}
	case has(catalog.KeyToken):
		return SecretCheck{Keys: fmt.Sprintf("%q", catalog.KeyToken)}
	case has(catalog.KeySSHPrivateKey):
		return SecretCheck{Keys: fmt.Sprintf("%q and %q", catalog.KeySSHPrivateKey, catalog.KeyKnownHosts)}
	}
	return SecretCheck{Reason: v1alpha1.ReasonSecretKeyMissing,
		Message: fmt.Sprintf("credentials Secret %s/%s has no credential: add %s", p.Namespace, name, credentialKeys)}
}

// tokens checks every token Secret key of a SourceCluster; the message names each that fails.
func (c *secretCache) tokens(ctx context.Context, sc *v1alpha1.SourceCluster) SecretCheck {
	var out SecretCheck
	var msgs []string
	for _, ref := range sc.Spec.TokenSecretRefs {
		key := ref.EffectiveKey()
		s, err := c.get(ctx, ref.Namespace, ref.Name)
		var check SecretCheck
		switch {
		case err != nil:
			check = notFound("token", ref.Namespace, ref.Name, fmt.Sprintf("%q", key), err)
		case len(s.Data[key]) == 0:
			check = SecretCheck{Reason: v1alpha1.ReasonSecretKeyMissing,
				Message: fmt.Sprintf("token Secret %s/%s has no key %q: add the cluster's bearer token under it", ref.Namespace, ref.Name, key)}
		default:
			continue
		}
		if out.Reason == "" {
			out.Reason = check.Reason
		}
		msgs = append(msgs, check.Message)
	}
	out.Message = strings.Join(msgs, "; ")
	return out
}
