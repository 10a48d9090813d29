// Loading a screen's lists: the saved copy when offline, the error in the user's words otherwise.
import { ref } from 'vue'
import { errorText } from '../i18n.js'

export function useLoad(load) {
  const offline = ref(false)
  const error = ref('')
  const loading = ref(true)

  async function reload() {
    loading.value = true
    error.value = ''
    try {
      offline.value = (await load()) === true
    } catch (err) {
      error.value = errorText(err)
    } finally {
      loading.value = false
    }
  }

  reload()
  return { offline, error, loading, reload }
}
